-- Each host's number of open banned and approved findings (installed or running), kept
-- in the transaction that opens or resolves its host_apps rows, so that the overview
-- and the coverage figures count hosts without looking into host_apps.

ALTER TABLE hosts ADD COLUMN open_banned BIGINT NOT NULL DEFAULT 0;
ALTER TABLE hosts ADD COLUMN open_approved BIGINT NOT NULL DEFAULT 0;

UPDATE hosts h SET
    open_banned = (SELECT COUNT(*) FROM host_apps a WHERE a.host_id = h.id
                   AND a.resolved_at IS NULL AND a.status = 'banned'
                   AND a.strength IN ('installed', 'running')),
    open_approved = (SELECT COUNT(*) FROM host_apps a WHERE a.host_id = h.id
                     AND a.resolved_at IS NULL AND a.status = 'approved'
                     AND a.strength IN ('installed', 'running'));

-- Covers the per-organization aggregate (and what hosts_organization_seen served).
DROP INDEX hosts_organization_seen;
CREATE INDEX hosts_organization_counters
    ON hosts(organization_id, last_seen_at, open_banned, open_approved);
