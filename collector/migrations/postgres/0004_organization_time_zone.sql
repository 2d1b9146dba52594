-- An organization's own time zone (an IANA name such as Europe/Samara) for its dates
-- and week boundaries; NULL inherits the parent's, and at the top the collector's
-- [dashboard] time_zone.
ALTER TABLE organizations ADD COLUMN time_zone TEXT;
