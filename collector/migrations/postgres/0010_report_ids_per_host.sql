-- A report id is unique per host, not across hosts: a host that sends another host's
-- report id must neither be told "duplicate" nor drop the other host's report.
-- The key leads with the report id (time-ordered UUIDs), so new rows still land at the
-- end of the index rather than at a random place per host.
ALTER TABLE reports DROP CONSTRAINT reports_pkey;
ALTER TABLE reports ADD PRIMARY KEY (report_id, host_id);
