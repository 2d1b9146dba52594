-- The weekly report by e-mail (issue 20). Who receives an organization's report: its
-- addresses, comma-separated, checked when entered; NULL: no mail.
ALTER TABLE organizations ADD COLUMN report_recipients TEXT;

-- One row per organization and week: claimed before the message is handed to the mail
-- server (`sending`), then `sent` or `failed` (tried again from `next_attempt_at`). A
-- row left `sending` by a collector that stopped while sending is never sent again by
-- itself (the message may have gone out); the weekly page says so and offers "send
-- now". `sent_by` is the login of whoever pressed "send now"; NULL: the schedule.
CREATE TABLE weekly_mail (
    organization_id INTEGER NOT NULL REFERENCES organizations(id),
    week TEXT NOT NULL,
    state TEXT NOT NULL,
    recipients TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    last_error TEXT,
    claimed_at INTEGER NOT NULL,
    sent_at INTEGER,
    next_attempt_at INTEGER,
    sent_by TEXT,
    PRIMARY KEY (organization_id, week)
);
