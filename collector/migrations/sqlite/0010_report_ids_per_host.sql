-- A report id is unique per host, not across hosts: a host that sends another host's
-- report id must neither be told "duplicate" nor drop the other host's report.
-- The key leads with the report id (time-ordered UUIDs), so new rows still land at the
-- end of the index rather than at a random place per host.
-- SQLite cannot change a primary key in place, so the table is rebuilt.
CREATE TABLE reports_per_host (
    host_id INTEGER NOT NULL REFERENCES hosts(id),
    report_id TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    scanned_at INTEGER NOT NULL,
    kind TEXT NOT NULL,
    scan_errors INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (report_id, host_id)
) WITHOUT ROWID;
INSERT INTO reports_per_host (host_id, report_id, received_at, scanned_at, kind, scan_errors)
    SELECT host_id, report_id, received_at, scanned_at, kind, scan_errors FROM reports;
DROP TABLE reports;
ALTER TABLE reports_per_host RENAME TO reports;
CREATE INDEX reports_received ON reports(received_at);
