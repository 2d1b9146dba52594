-- Notifications of what is new (issue 20): a daily digest by e-mail and a signed
-- webhook per organization. Who receives the digest (addresses, comma-separated,
-- checked when entered; NULL: none); where the webhook posts and the secret it signs
-- with (NULL: no webhook).
ALTER TABLE organizations ADD COLUMN digest_recipients TEXT;
ALTER TABLE organizations ADD COLUMN webhook_url TEXT;
ALTER TABLE organizations ADD COLUMN webhook_secret TEXT;

-- Each notification, captured before it is sent (an outbox): the changes of
-- [covered_from, covered_until) in the organization's subtree, as JSON. The next one
-- of the same channel starts where the last one ended, so nothing is left out and
-- nothing is told twice. `state`: `nothing_new` (a digest day with nothing to tell:
-- recorded, not sent), `pending`, `sending` (claimed), `sent`, `failed` (tried again
-- from `next_attempt_at`; NULL there: given up). `day`: the digest's local day
-- (scheduled digests), NULL for the webhook and for digests asked for by hand.
CREATE TABLE notifications (
    id INTEGER PRIMARY KEY,
    organization_id INTEGER NOT NULL REFERENCES organizations(id),
    channel TEXT NOT NULL,
    day TEXT,
    covered_from INTEGER NOT NULL,
    covered_until INTEGER NOT NULL,
    destination TEXT NOT NULL,
    payload TEXT,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    next_attempt_at INTEGER,
    claimed_at INTEGER,
    created_at INTEGER NOT NULL,
    sent_at INTEGER,
    UNIQUE (organization_id, channel, covered_from)
);
CREATE UNIQUE INDEX notifications_digest_day ON notifications(organization_id, channel, day);
CREATE INDEX notifications_due ON notifications(state, next_attempt_at);

-- The changes of a time window are read by the time they were recorded.
CREATE INDEX finding_events_at ON finding_events(at);
