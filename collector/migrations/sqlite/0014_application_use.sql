-- When each PC used each catalog application (issue 20): the times of program activity
-- its agent reported (`last_used` of a finding: a data folder's or Prefetch file's
-- modification time, a program seen running), one row per host, application and UTC
-- day with the earliest and the latest time reported for that day. A day holds at most
-- one boundary of any week, so "used in the week [start, end)" is exact: some row of a
-- day the week touches has its first or its last time inside it.
--
-- `status` is the application's status in the collector's catalog when the use was
-- recorded (a use while it was banned stays a banned use). Without a rowid, SQLite keeps
-- the rows in the primary key's order: a week's count reads its days' rows in one range.
CREATE TABLE app_use_days (
    day INTEGER NOT NULL,
    host_id INTEGER NOT NULL REFERENCES hosts(id),
    app_id TEXT NOT NULL,
    status TEXT NOT NULL,
    first_used_at INTEGER NOT NULL,
    last_used_at INTEGER NOT NULL,
    PRIMARY KEY (day, host_id, app_id)
) WITHOUT ROWID;
CREATE INDEX app_use_days_host ON app_use_days(host_id, app_id, day);

-- A frozen week's use figures: PCs (not retired) that used an approved, and a banned,
-- application in the week; NULL in weeks frozen before use was counted.
ALTER TABLE weekly_snapshots ADD COLUMN used_approved INTEGER;
ALTER TABLE weekly_snapshots ADD COLUMN used_banned INTEGER;

-- The same week's PCs per application (the organization's own PCs, not its subtree's).
CREATE TABLE weekly_app_use (
    organization_id INTEGER NOT NULL REFERENCES organizations(id),
    week TEXT NOT NULL,
    app_id TEXT NOT NULL,
    status TEXT NOT NULL,
    pcs INTEGER NOT NULL,
    PRIMARY KEY (organization_id, week, app_id, status)
);
CREATE INDEX weekly_app_use_week ON weekly_app_use(week);
