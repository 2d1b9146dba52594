-- Hosts with a lifecycle (the same columns as migrations/sqlite/0011_host_lifecycle.sql):
-- a retired host leaves every count and list of current state while its history
-- stays; a merged duplicate is retired and points at the host it duplicates;
-- enrolled_by_secret names the secret that first enrolled the host.
ALTER TABLE hosts ADD COLUMN retired_at BIGINT;
ALTER TABLE hosts ADD COLUMN merged_into BIGINT REFERENCES hosts(id);
ALTER TABLE hosts ADD COLUMN enrolled_by_secret BIGINT REFERENCES enrollment_secrets(id);
CREATE INDEX hosts_enrolled ON hosts(organization_id, enrolled_at);
