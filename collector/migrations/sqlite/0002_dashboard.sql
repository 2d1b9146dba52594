-- The dashboard: people, their sessions and API tokens, the audit log, notes on
-- violations being handled, and frozen weekly figures. Times are Unix seconds (UTC).

CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    login TEXT NOT NULL UNIQUE,
    -- argon2id in PHC string format.
    password_hash TEXT NOT NULL,
    -- administrator, officer or school_admin.
    role TEXT NOT NULL,
    organization_id INTEGER REFERENCES organizations(id),
    language TEXT NOT NULL DEFAULT 'ru',
    created_at INTEGER NOT NULL,
    disabled_at INTEGER
);

-- Only SHA-256 of the cookie's random part is stored.
CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id),
    csrf_token TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX sessions_user ON sessions(user_id);

CREATE TABLE api_tokens (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id),
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE INDEX api_tokens_user ON api_tokens(user_id);

CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY,
    at INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    organization_id INTEGER,
    detail TEXT NOT NULL
);

-- A school admin's note that a violation is being handled.
CREATE TABLE handled_marks (
    host_id INTEGER NOT NULL REFERENCES hosts(id),
    app_id TEXT NOT NULL,
    note TEXT NOT NULL,
    by_login TEXT NOT NULL,
    at INTEGER NOT NULL,
    PRIMARY KEY (host_id, app_id)
);

-- The overview's figures of an organization (its whole subtree), frozen per week.
CREATE TABLE weekly_snapshots (
    organization_id INTEGER NOT NULL REFERENCES organizations(id),
    week TEXT NOT NULL,
    expected_pcs INTEGER NOT NULL,
    enrolled INTEGER NOT NULL,
    reporting INTEGER NOT NULL,
    silent INTEGER NOT NULL,
    with_banned INTEGER NOT NULL,
    with_approved INTEGER NOT NULL,
    frozen_at INTEGER NOT NULL,
    PRIMARY KEY (organization_id, week)
);
CREATE INDEX weekly_snapshots_week ON weekly_snapshots(week);
