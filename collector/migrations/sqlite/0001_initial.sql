-- Sverka collector schema, version 1. Times are Unix seconds (UTC).

CREATE TABLE organizations (
    id INTEGER PRIMARY KEY,
    parent_id INTEGER REFERENCES organizations(id),
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    expected_pcs INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);
CREATE INDEX organizations_parent ON organizations(parent_id);

CREATE TABLE enrollment_secrets (
    id INTEGER PRIMARY KEY,
    organization_id INTEGER NOT NULL REFERENCES organizations(id),
    secret_hash TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    revoked_at INTEGER
);

CREATE TABLE hosts (
    id INTEGER PRIMARY KEY,
    organization_id INTEGER NOT NULL REFERENCES organizations(id),
    machine_id TEXT NOT NULL,
    hostname TEXT NOT NULL,
    os_id TEXT NOT NULL DEFAULT '',
    os_name TEXT NOT NULL DEFAULT '',
    agent_version TEXT NOT NULL DEFAULT '',
    key_hash TEXT NOT NULL,
    enrolled_at INTEGER NOT NULL,
    last_seen_at INTEGER,
    last_scan_at INTEGER,
    inventory_digest TEXT,
    evidence TEXT NOT NULL DEFAULT '[]',
    catalog_revision INTEGER NOT NULL DEFAULT 0,
    -- Digest of the last evaluated findings: an unchanged check-in skips the diff.
    findings_digest TEXT NOT NULL DEFAULT '',
    UNIQUE (organization_id, machine_id)
);

-- Every report received, for deduplication and the check-in history.
CREATE TABLE reports (
    report_id TEXT PRIMARY KEY,
    host_id INTEGER NOT NULL REFERENCES hosts(id),
    received_at INTEGER NOT NULL,
    scanned_at INTEGER NOT NULL,
    kind TEXT NOT NULL,
    scan_errors INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX reports_host ON reports(host_id, received_at);

-- Inventories, content-addressed: identical PCs share one row.
CREATE TABLE inventories (
    digest TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    item_count INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);

-- The current state of each application on each host: open while resolved_at is NULL.
CREATE TABLE host_apps (
    host_id INTEGER NOT NULL REFERENCES hosts(id),
    app_id TEXT NOT NULL,
    app_name TEXT NOT NULL,
    status TEXT NOT NULL,
    strength TEXT NOT NULL,
    users TEXT NOT NULL,
    evidence TEXT NOT NULL,
    first_seen INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    resolved_at INTEGER,
    PRIMARY KEY (host_id, app_id)
);
CREATE INDEX host_apps_open ON host_apps(app_id, resolved_at);

-- Appear / disappear history.
CREATE TABLE finding_events (
    id INTEGER PRIMARY KEY,
    host_id INTEGER NOT NULL REFERENCES hosts(id),
    app_id TEXT NOT NULL,
    event TEXT NOT NULL,
    at INTEGER NOT NULL,
    cause TEXT NOT NULL
);
CREATE INDEX finding_events_host ON finding_events(host_id, at);

-- The operator's catalog additions, merged over the built-in catalog; the row with the
-- highest revision is current.
CREATE TABLE catalog_revisions (
    revision INTEGER PRIMARY KEY,
    overrides TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
