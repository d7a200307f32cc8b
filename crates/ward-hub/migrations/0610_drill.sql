-- Drill jurisdictions (docs/hub.md "Drill jurisdictions"; `ward drill`): a jurisdiction made
-- for an exercise. Every message to it is marked as a drill, it does not count towards a
-- campaign's publication bar, and `ward hub drill purge` deletes it with everything it owns.
ALTER TABLE jurisdictions ADD COLUMN drill INTEGER NOT NULL DEFAULT 0 CHECK (drill IN (0, 1));
