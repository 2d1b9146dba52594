-- Since hosts can be retired (0011), every count reads `retired_at IS NULL`, which the
-- per-organization counters' index did not hold: each count read every host's row.
-- The counters' index now holds the active hosts only, so it covers the counts again.
DROP INDEX hosts_organization_counters;
CREATE INDEX hosts_active_counters
    ON hosts(organization_id, last_seen_at, open_banned, open_approved)
    WHERE retired_at IS NULL;

-- The active PCs that have an open banned finding now, per organization: the worklist
-- of a region finds its open violations through these instead of visiting every PC
-- (each host's `open_banned` counter is kept in the transaction that opens or resolves
-- its findings, so a host with an open violation is always in this index).
CREATE INDEX hosts_with_open_violations ON hosts(organization_id)
    WHERE open_banned > 0 AND retired_at IS NULL;
