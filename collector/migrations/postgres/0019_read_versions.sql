-- Versions of what readers may keep in memory (issue 21: a federal collector's tree
-- of 87,000 organizations is read on every page). A reader reads the version first,
-- then the rows, and keeps them under that version; a write that changes them bumps
-- it in its own transaction, so every collector process on the database sees it.
--   tree:  organizations and what federation adds to them (the figures' age, the
--          federated organizations' current counts);
--   weeks: frozen weekly figures, here and federated.
-- Own organizations bump `tree` through the triggers below, whatever writes them (a
-- CLI beside the server too); a lower collector's message bumps both explicitly, once.
-- Not copied by `migrate`: the target keeps its own.
CREATE TABLE read_versions (
    name TEXT PRIMARY KEY,
    version BIGINT NOT NULL
);

CREATE FUNCTION bump_tree_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO read_versions (name, version) VALUES ('tree', 1)
    ON CONFLICT (name) DO UPDATE SET version = read_versions.version + 1;
    RETURN NULL;
END
$$;

CREATE TRIGGER organizations_inserted_bump AFTER INSERT ON organizations
FOR EACH ROW WHEN (NEW.federated_link_id IS NULL) EXECUTE FUNCTION bump_tree_version();

CREATE TRIGGER organizations_updated_bump AFTER UPDATE ON organizations
FOR EACH ROW WHEN (NEW.federated_link_id IS NULL) EXECUTE FUNCTION bump_tree_version();

CREATE TRIGGER organizations_deleted_bump AFTER DELETE ON organizations
FOR EACH ROW WHEN (OLD.federated_link_id IS NULL) EXECUTE FUNCTION bump_tree_version();

-- A federated organization its lower collector no longer sends (deleted or merged
-- there): kept for the weeks it was counted in, expecting no PC from then on, and
-- shown as removed; cleared if it is sent again.
ALTER TABLE organizations ADD COLUMN federated_gone_at BIGINT;
