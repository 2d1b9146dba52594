-- The reporting week's cut-off per organization: the day and time its weekly report is
-- due (`thursday 15:00`; `thursday` alone is the end of that day). NULL inherits the
-- parent's, then the collector's `[dashboard] week_ends_on`.
ALTER TABLE organizations ADD COLUMN report_cutoff TEXT;
