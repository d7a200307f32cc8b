-- Drill jurisdictions, the counterpart of ../0610_drill.sql (docs/hub.md "Drill jurisdictions").
ALTER TABLE jurisdictions ADD COLUMN drill boolean NOT NULL DEFAULT FALSE;
