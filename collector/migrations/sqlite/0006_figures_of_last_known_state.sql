-- A PC's state is its last report, however old: weekly figures count PCs whose last
-- known state has a banned (or approved) messenger, silent ones included. Two figures
-- are kept beside them from now on: PCs with a known state (the base of the shares)
-- and silent PCs with a banned messenger. Figures frozen before stay as they were
-- (NULL here).
ALTER TABLE weekly_snapshots ADD COLUMN known INTEGER;
ALTER TABLE weekly_snapshots ADD COLUMN silent_with_banned INTEGER;
