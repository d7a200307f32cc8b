-- Disinformation reports and cases (crates/ward-hub/src/disinfo/; docs/disinformation.md).
--
-- A report is one official's account of a false claim; reports of the same claim (the same
-- post after URL normalisation, or near-duplicate claim text) are one case. Screenshots are
-- stored here, content-addressed by SHA-256 (metadata already stripped), so every replica of a
-- PostgreSQL hub serves them and `ward hub migrate` copies them with the rest.

CREATE TABLE disinfo_cases (
    id INTEGER PRIMARY KEY,
    -- The first report's claim (the case's title).
    claim TEXT NOT NULL,
    category TEXT NOT NULL,
    -- 'high' or 'normal': the most urgent of its reports.
    urgency TEXT NOT NULL CHECK (urgency IN ('high', 'normal')),
    status TEXT NOT NULL CHECK (status IN ('new', 'triaged', 'referred', 'outcome', 'closed')),
    -- The MinHash signature of the first report's claim (hex), compared with new claims.
    signature TEXT NOT NULL,
    -- The claim's anchors (numbers, dates, days): near-duplicates must agree on them.
    anchors TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL
);
CREATE INDEX disinfo_cases_updated ON disinfo_cases (updated_ms);

CREATE TABLE disinfo_reports (
    id INTEGER PRIMARY KEY,
    case_id INTEGER NOT NULL REFERENCES disinfo_cases(id),
    -- The reporting jurisdiction (the user's, or the one an analyst filed for).
    jurisdiction_id INTEGER NOT NULL REFERENCES jurisdictions(id),
    reporter_user_id INTEGER NOT NULL,
    reporter_username TEXT NOT NULL,
    -- 1 when a hub analyst filed it on the jurisdiction's behalf.
    on_behalf INTEGER NOT NULL DEFAULT 0,
    platform TEXT NOT NULL,
    category TEXT NOT NULL,
    urgency TEXT NOT NULL CHECK (urgency IN ('high', 'normal')),
    claim TEXT NOT NULL,
    truth TEXT NOT NULL,
    citation TEXT NOT NULL,
    seen_ms INTEGER,
    views INTEGER,
    shares INTEGER,
    -- DISARM technique ids, a JSON array.
    disarm TEXT NOT NULL DEFAULT '[]',
    created_ms INTEGER NOT NULL
);
CREATE INDEX disinfo_reports_case ON disinfo_reports (case_id);
CREATE INDEX disinfo_reports_jurisdiction ON disinfo_reports (jurisdiction_id, id);

CREATE TABLE disinfo_report_urls (
    report_id INTEGER NOT NULL REFERENCES disinfo_reports(id),
    case_id INTEGER NOT NULL REFERENCES disinfo_cases(id),
    position INTEGER NOT NULL,
    url TEXT NOT NULL,
    -- The normalised form (disinfo::cases::normalize_url): the same post has the same key.
    url_key TEXT NOT NULL,
    PRIMARY KEY (report_id, position)
);
CREATE INDEX disinfo_report_urls_key ON disinfo_report_urls (url_key);

-- The jurisdictions each report says the claim concerns.
CREATE TABLE disinfo_report_jurisdictions (
    report_id INTEGER NOT NULL REFERENCES disinfo_reports(id),
    case_id INTEGER NOT NULL REFERENCES disinfo_cases(id),
    jurisdiction_id INTEGER NOT NULL REFERENCES jurisdictions(id),
    PRIMARY KEY (report_id, jurisdiction_id)
);
CREATE INDEX disinfo_report_jurisdictions_case ON disinfo_report_jurisdictions (case_id, jurisdiction_id);
CREATE INDEX disinfo_report_jurisdictions_j ON disinfo_report_jurisdictions (jurisdiction_id, case_id);

-- LSH bands of the case's claims' signatures: a new claim's candidate cases share a band.
CREATE TABLE disinfo_case_bands (
    band INTEGER NOT NULL,
    case_id INTEGER NOT NULL REFERENCES disinfo_cases(id),
    PRIMARY KEY (band, case_id)
);

CREATE TABLE disinfo_screenshots (
    sha256 TEXT PRIMARY KEY,
    media_type TEXT NOT NULL CHECK (media_type IN ('image/png', 'image/jpeg', 'image/webp')),
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    bytes BLOB NOT NULL,
    created_ms INTEGER NOT NULL
);

CREATE TABLE disinfo_report_screenshots (
    report_id INTEGER NOT NULL REFERENCES disinfo_reports(id),
    sha256 TEXT NOT NULL REFERENCES disinfo_screenshots(sha256),
    PRIMARY KEY (report_id, sha256)
);
CREATE INDEX disinfo_report_screenshots_sha ON disinfo_report_screenshots (sha256);

-- The case's timeline: each report, and each status change with who made it and why.
CREATE TABLE disinfo_case_log (
    id INTEGER PRIMARY KEY,
    case_id INTEGER NOT NULL REFERENCES disinfo_cases(id),
    kind TEXT NOT NULL CHECK (kind IN ('opened', 'reported', 'status')),
    status TEXT,
    report_id INTEGER,
    jurisdiction_id INTEGER,
    referred_to TEXT,
    outcome TEXT CHECK (outcome IN ('removed', 'labelled', 'no-action', 'no-answer')),
    note TEXT,
    by_user TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE INDEX disinfo_case_log_case ON disinfo_case_log (case_id, id);
