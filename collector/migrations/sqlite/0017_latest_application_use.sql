-- Each PC's latest use of each application per status (issue 19's target for the live
-- weekly report): the largest `last_used_at` of the host's `app_use_days` rows of that
-- application with that status (and with `app_id` empty, of any application with
-- that status: the PCs per status count those rows, each PC once), kept in the
-- transaction that writes those rows, with the host's organization (a host never
-- changes organization). NULL once no day row has that status any more (a day whose
-- status changed with a later use that day).
--
-- A week's count reads these rows instead of every day row of the week: a PC's use
-- is inside `[from, until)` when its latest is inside; when the latest is before
-- `from`, no use is; only a latest at or after `until` (a past week, a clock ahead)
-- sends the count to the day rows. The live week reads one row per PC and application
-- instead of one per day, in the order of its groups, and no host row.
CREATE TABLE app_use_latest (
    host_id INTEGER NOT NULL REFERENCES hosts(id),
    app_id TEXT NOT NULL,
    status TEXT NOT NULL,
    organization_id INTEGER NOT NULL REFERENCES organizations(id),
    last_used_at INTEGER,
    PRIMARY KEY (host_id, app_id, status)
) WITHOUT ROWID;
-- The count's groups in order, covering what it reads: no sort.
CREATE INDEX app_use_latest_groups
    ON app_use_latest(organization_id, app_id, status, last_used_at, host_id);

INSERT INTO app_use_latest (host_id, app_id, status, organization_id, last_used_at)
SELECT u.host_id, u.app_id, u.status, h.organization_id, MAX(u.last_used_at)
FROM app_use_days u JOIN hosts h ON h.id = u.host_id
GROUP BY u.host_id, u.app_id, u.status, h.organization_id
UNION ALL
SELECT u.host_id, '', u.status, h.organization_id, MAX(u.last_used_at)
FROM app_use_days u JOIN hosts h ON h.id = u.host_id
GROUP BY u.host_id, u.status, h.organization_id;

-- The retired PCs (few), which the count leaves out without reading every host.
CREATE INDEX hosts_retired ON hosts(id) WHERE retired_at IS NOT NULL;
