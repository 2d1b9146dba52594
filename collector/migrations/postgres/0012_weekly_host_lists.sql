-- The PCs behind a frozen week's "with banned messengers" figures (the same tables as
-- migrations/sqlite/0012_weekly_host_lists.sql): one list per week and per week
-- boundaries, written once when the week is frozen.
CREATE TABLE weekly_host_lists (
    week TEXT NOT NULL,
    boundaries TEXT NOT NULL,
    silent_before BIGINT NOT NULL,
    frozen_at BIGINT NOT NULL,
    PRIMARY KEY (week, boundaries)
);
CREATE TABLE weekly_list_hosts (
    week TEXT NOT NULL,
    boundaries TEXT NOT NULL,
    host_id BIGINT NOT NULL,
    organization_id BIGINT NOT NULL,
    hostname TEXT NOT NULL,
    last_seen_at BIGINT,
    open_banned BIGINT NOT NULL,
    PRIMARY KEY (week, boundaries, host_id),
    FOREIGN KEY (week, boundaries) REFERENCES weekly_host_lists(week, boundaries)
);
CREATE INDEX weekly_list_hosts_organization ON weekly_list_hosts(week, boundaries, organization_id);
