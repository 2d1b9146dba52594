-- The PCs behind a frozen week's "with banned messengers" figures, kept when the week
-- is frozen so that the weekly report's figures link to the PCs they counted (the
-- worklist shows PCs as they are now). One list per week and per week boundaries
-- (`time zone|cut-off` of the organizations frozen together; see
-- web::figures::boundaries_key), written once; the hosts are every PC that had a
-- banned messenger then, with the organization it was in.
CREATE TABLE weekly_host_lists (
    week TEXT NOT NULL,
    boundaries TEXT NOT NULL,
    silent_before INTEGER NOT NULL,
    frozen_at INTEGER NOT NULL,
    PRIMARY KEY (week, boundaries)
);
CREATE TABLE weekly_list_hosts (
    week TEXT NOT NULL,
    boundaries TEXT NOT NULL,
    host_id INTEGER NOT NULL,
    organization_id INTEGER NOT NULL,
    hostname TEXT NOT NULL,
    last_seen_at INTEGER,
    open_banned INTEGER NOT NULL,
    PRIMARY KEY (week, boundaries, host_id),
    FOREIGN KEY (week, boundaries) REFERENCES weekly_host_lists(week, boundaries)
);
CREATE INDEX weekly_list_hosts_organization ON weekly_list_hosts(week, boundaries, organization_id);
