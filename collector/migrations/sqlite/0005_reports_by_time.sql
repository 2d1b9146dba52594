-- Report ids are kept to recognise a report sent twice and are pruned by age; nothing
-- reads them by host. The index by host and time cost each check-in an insert at a
-- random place (a page of its own to write per report); the index by time grows at
-- its end and serves the pruning, which scanned the whole table before.
DROP INDEX reports_host;
CREATE INDEX reports_received ON reports(received_at);
