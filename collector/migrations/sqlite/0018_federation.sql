-- Federation (issue 21): municipal collectors send their figures up to a regional
-- collector, regions to the country.
--
-- On the upstream: a link per lower collector, made for one of its organizations (the
-- lower collector's organizations appear under it). Only the SHA-256 of the secret's
-- random part is kept. `detail`: `counts` or `pcs` (PC names too).
-- `last_generated_at`: when the lower collector counted the current figures applied
-- last (older ones never replace them).
CREATE TABLE federation_links (
    id INTEGER PRIMARY KEY,
    organization_id INTEGER NOT NULL REFERENCES organizations(id),
    secret_hash TEXT NOT NULL,
    detail TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER,
    last_received_at INTEGER,
    last_generated_at INTEGER
);

-- A federated organization is an organization row (so the tree, scopes and pages
-- know it) that belongs to a link, under the lower collector's key for it. No foreign
-- key to the link: links reference organizations, and a copy to PostgreSQL takes
-- parents first.
ALTER TABLE organizations ADD COLUMN federated_link_id INTEGER;
ALTER TABLE organizations ADD COLUMN federated_key TEXT;
CREATE UNIQUE INDEX organizations_federated
    ON organizations(federated_link_id, federated_key) WHERE federated_link_id IS NOT NULL;

-- A federated organization's own PCs as of `as_of` (the lower collector's count),
-- replaced by each newer message.
CREATE TABLE federated_counts (
    organization_id INTEGER PRIMARY KEY REFERENCES organizations(id),
    as_of INTEGER NOT NULL,
    enrolled INTEGER NOT NULL,
    reporting INTEGER NOT NULL,
    silent INTEGER NOT NULL,
    with_banned INTEGER NOT NULL,
    with_approved INTEGER NOT NULL,
    known INTEGER NOT NULL,
    silent_with_banned INTEGER NOT NULL
);

-- Per federated organization and banned messenger: its own PCs that have it, with
-- their names (JSON array) when the link allows them.
CREATE TABLE federated_violations (
    organization_id INTEGER NOT NULL REFERENCES organizations(id),
    app_id TEXT NOT NULL,
    pcs INTEGER NOT NULL,
    hosts TEXT NOT NULL,
    PRIMARY KEY (organization_id, app_id)
);

-- Per federated organization, application (empty: any) and status: its own PCs that
-- used it in the lower collector's week [week_start, week_end).
CREATE TABLE federated_use (
    organization_id INTEGER NOT NULL REFERENCES organizations(id),
    app_id TEXT NOT NULL,
    status TEXT NOT NULL,
    week_start INTEGER NOT NULL,
    week_end INTEGER NOT NULL,
    pcs INTEGER NOT NULL,
    PRIMARY KEY (organization_id, app_id, status)
);

-- A federated organization's frozen weeks (everything under it), as the lower
-- collector froze them: stored once, never changed (a resend or an old backup's
-- figures change nothing).
CREATE TABLE federated_weeks (
    organization_id INTEGER NOT NULL REFERENCES organizations(id),
    week TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    expected_pcs INTEGER NOT NULL,
    enrolled INTEGER NOT NULL,
    reporting INTEGER NOT NULL,
    silent INTEGER NOT NULL,
    with_banned INTEGER NOT NULL,
    with_approved INTEGER NOT NULL,
    known INTEGER,
    silent_with_banned INTEGER,
    used_approved INTEGER,
    used_banned INTEGER,
    PRIMARY KEY (organization_id, week)
);

-- On the lower collector: its one upstream (if any), the secret it sends (it must be
-- able to send it), what the upstream said the link allows, and how the last pushes
-- went. `acknowledged_week`: the newest frozen week the upstream holds.
CREATE TABLE upstream_link (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    url TEXT NOT NULL,
    secret TEXT NOT NULL,
    allow_http INTEGER NOT NULL,
    configured_at INTEGER NOT NULL,
    upstream_organization TEXT NOT NULL,
    detail TEXT NOT NULL,
    acknowledged_week TEXT,
    last_attempt_at INTEGER,
    last_success_at INTEGER,
    last_error TEXT
);
