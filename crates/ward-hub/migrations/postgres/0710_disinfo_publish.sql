-- Publishing a disinformation case on the public "rumor vs reality" page, the counterpart of
-- ../0710_disinfo_publish.sql: when an analyst published it, NULL while it is not published.
ALTER TABLE disinfo_cases ADD COLUMN published_ms bigint;
CREATE INDEX disinfo_cases_published ON disinfo_cases (published_ms) WHERE published_ms IS NOT NULL;
