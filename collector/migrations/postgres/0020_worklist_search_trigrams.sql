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
        -- One index over every searched column; a search's OR of them is read as one
        -- bitmap per column, joined.
        CREATE INDEX host_apps_search_trigrams ON host_apps USING gin (
            lower(users) gin_trgm_ops, users gin_trgm_ops,
            lower(app_name) gin_trgm_ops, app_name gin_trgm_ops,
            lower(app_id) gin_trgm_ops);
        -- The planner needs the indexed expressions' statistics to see that a search
        -- finds few findings; without them it kept visiting every PC's findings.
        ANALYZE host_apps;
    END IF;
END
$$;
