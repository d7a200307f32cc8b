-- State roll-up (crates/ward-hub/src/rollup.rs): a state's counties and cities are found by
-- parent_id whenever a county is targeted and whenever a state user reads its counties' data.
CREATE INDEX jurisdictions_parent ON jurisdictions (parent_id) WHERE parent_id IS NOT NULL;
