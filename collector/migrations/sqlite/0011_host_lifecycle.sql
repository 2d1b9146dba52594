-- Hosts with a lifecycle: a retired host (a PC that is gone, or one enrolled by
-- mistake) leaves every count and list of current state while its history stays; a
-- duplicate merged into the host it duplicates is retired and points at that host.
-- enrolled_by_secret names the secret that first enrolled the host (NULL for hosts
-- enrolled before this migration), for the list of recent enrollments per secret.
ALTER TABLE hosts ADD COLUMN retired_at INTEGER;
ALTER TABLE hosts ADD COLUMN merged_into INTEGER REFERENCES hosts(id);
ALTER TABLE hosts ADD COLUMN enrolled_by_secret INTEGER REFERENCES enrollment_secrets(id);
CREATE INDEX hosts_enrolled ON hosts(organization_id, enrolled_at);
