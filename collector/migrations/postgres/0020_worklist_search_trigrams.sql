-- The worklist's search (issue 19) looks for its text inside a finding's users and
-- application name and id (`LIKE '%text%'`). A B-tree cannot answer that, so a region's
-- search visited every PC's findings. A trigram index (the pg_trgm extension, shipped
-- with PostgreSQL) answers it for any text of three or more characters.
--
-- pg_trgm is a trusted extension since PostgreSQL 13: a role with CREATE on the
-- database (its owner) may create it. Where it cannot be created (an older server, a
-- server without its contrib files, a role without that right), the migration goes on
-- without the index: the search gives the same answers, only slower
-- (docs/postgresql.md).
DO $$
BEGIN
    CREATE EXTENSION IF NOT EXISTS pg_trgm;
EXCEPTION WHEN OTHERS THEN
    RAISE NOTICE 'pg_trgm could not be created (%); the worklist search runs without its index', SQLERRM;
END
$$;

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN
        -- Of banned findings only (what the worklist lists), over one text of all
        -- the searched columns, each folded and as stored, kept apart by a control
        -- character that a search never holds: five columns indexed one by one
        -- cost each new finding six times as much to insert.
        CREATE INDEX host_apps_search_trigrams ON host_apps USING gin (
            (lower(users) || chr(1) || users || chr(1) || lower(app_name) || chr(1)
                || app_name || chr(1) || lower(app_id)) gin_trgm_ops)
            WHERE status = 'banned' AND strength IN ('installed', 'running');
        -- The planner needs the indexed expressions' statistics to see that a search
        -- finds few findings; without them it kept visiting every PC's findings. Not
        -- on a new database: statistics of an empty table misled the first hours'
        -- writes (a boot storm's PostgreSQL CPU +50%) until autovacuum analyzed it.
        IF EXISTS (SELECT 1 FROM host_apps) THEN
            ANALYZE host_apps;
        END IF;
    END IF;
END
$$;
