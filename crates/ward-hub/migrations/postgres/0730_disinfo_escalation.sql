-- Disinformation cases nobody has handled: when the hub escalated one (crate::disinfo::routing,
-- [notify] disinfo_untouched_mins / disinfo_untouched_urgent_mins). NULL: not escalated.
ALTER TABLE disinfo_cases ADD COLUMN escalated_ms BIGINT;
