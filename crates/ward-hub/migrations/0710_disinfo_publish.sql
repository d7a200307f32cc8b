-- Publishing a disinformation case on the public "rumor vs reality" page (issue #13;
-- crates/ward-hub/src/disinfo/web.rs, docs/disinformation.md): when an analyst published it,
-- NULL while it is not published.
ALTER TABLE disinfo_cases ADD COLUMN published_ms INTEGER;
CREATE INDEX disinfo_cases_published ON disinfo_cases (published_ms) WHERE published_ms IS NOT NULL;
