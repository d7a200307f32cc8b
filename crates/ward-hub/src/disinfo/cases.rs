//! What makes two reports one case: the same post (URL normalisation) or the same claim in
//! other words (near-duplicate text).
//!
//! * **URLs.** [`normalize_url`] gives a key without scheme, `www.`/`m.`/`mobile.` prefixes,
//!   fragment, tracking parameters (`utm_*`, `fbclid`, `gclid`, `si`, `igsh`, …) or trailing
//!   slash, with the remaining parameters sorted; for x.com/twitter, facebook, instagram,
//!   tiktok, youtube, reddit, threads, bluesky and telegram the key is the platform's post id
//!   where the URL shows it (`x.com/status/123`), so a share link and a profile link to the same
//!   post agree. Short links (`t.co`, `vm.tiktok.com`) are kept as they are: the hub never
//!   fetches a reported URL.
//! * **Claims.** [`fingerprint`] lowercases the claim, splits digits from letters (`5pm` →
//!   `5 pm`), drops stop words, stems crudely and folds month and weekday names, then takes
//!   word unigrams and bigrams as shingles and their MinHash signature ([`SIGNATURE_LEN`]
//!   64-bit mixes of an FNV-1a hash, kept as 32 bits). Candidate cases share one of the
//!   [`BANDS`] LSH bands (two values each: a claim with Jaccard 0.3 to a case finds it with
//!   probability 0.998); a candidate joins when the estimated Jaccard is at least
//!   [`DEFAULT_MIN_SIMILARITY`] and the *anchors* agree: the same numbers when both claims have
//!   some (same place, other date is another claim), and each claim's proper names among the
//!   other's words (same date, other county is another claim). Precision and recall on the
//!   labelled pairs in `tests/data/disinfo_pairs.tsv`: `bench-disinfo` (docs/disinformation.md).
//!
//! Hashes are fixed (FNV-1a and splitmix64 constants), never `std`'s `DefaultHasher`, so stored
//! signatures stay comparable across builds.

use std::collections::BTreeSet;

/// URLs longer than this are refused (browsers' practical limit).
pub const MAX_URL_LEN: usize = 2048;
/// MinHash values per signature.
pub const SIGNATURE_LEN: usize = 128;
/// Rows per LSH band.
pub const BAND_ROWS: usize = 2;
/// LSH bands per signature.
pub const BANDS: usize = SIGNATURE_LEN / BAND_ROWS;
/// The estimated Jaccard similarity at which a claim joins a case (tuned on the labelled set).
pub const DEFAULT_MIN_SIMILARITY: f64 = 0.25;

/// Query parameters that only track who shared a link.
pub(crate) fn is_tracking_param(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n.starts_with("utm_")
        || matches!(
            n.as_str(),
            "fbclid" | "gclid" | "dclid" | "msclkid" | "si" | "igsh" | "igshid" | "ref" | "ref_src" | "ref_url" | "mc_cid" | "mc_eid" | "_ga" | "feature" | "share_id" | "mibextid" | "rdid" | "s" | "t" | "sfnsn" | "__tn__" | "__cft__[0]" | "_rdr" | "is_from_webapp" | "sender_device" | "share_app_id" | "context"
        )
}

/// The normalised key of a reported URL (see the module note), or why it is refused.
pub fn normalize_url(raw: &str) -> Result<String, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err("an empty URL".into());
    }
    if raw.len() > MAX_URL_LEN {
        return Err(format!("a URL longer than {MAX_URL_LEN} characters"));
    }
    let parsed = match url::Url::parse(raw) {
        Ok(u) => u,
        Err(url::ParseError::RelativeUrlWithoutBase) => url::Url::parse(&format!("https://{raw}")).map_err(|e| format!("not a URL ({e})"))?,
        Err(e) => return Err(format!("not a URL ({e})")),
    };
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!("only http and https URLs can be reported, not {}:", parsed.scheme()));
    }
    let Some(host) = parsed.host_str() else { return Err("a URL without a host".into()) };
    let mut host = host.trim_end_matches('.').to_ascii_lowercase();
    for prefix in ["www.", "m.", "mobile.", "mbasic.", "old.", "new.", "web."] {
        if let Some(rest) = host.strip_prefix(prefix) {
            if rest.contains('.') {
                host = rest.to_string();
            }
        }
    }
    let host = match host.as_str() {
        "twitter.com" | "fxtwitter.com" | "vxtwitter.com" | "fixupx.com" => "x.com".to_string(),
        "youtu.be" | "youtube-nocookie.com" => "youtube.com".to_string(),
        "fb.com" | "fb.watch" => "facebook.com".to_string(),
        "redd.it" => "reddit.com".to_string(),
        "threads.com" => "threads.net".to_string(),
        _ => host,
    };
    let segments: Vec<&str> = parsed.path().split('/').filter(|s| !s.is_empty()).collect();
    let query: Vec<(String, String)> = parsed.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    if let Some(key) = post_key(&host, &segments, &query, parsed.host_str().unwrap_or_default()) {
        return Ok(key);
    }
    let mut kept: Vec<(String, String)> = query.into_iter().filter(|(k, _)| !is_tracking_param(k)).collect();
    kept.sort();
    let mut key = host;
    for s in &segments {
        key.push('/');
        key.push_str(s);
    }
    if !kept.is_empty() {
        key.push('?');
        let q: Vec<String> = kept.iter().map(|(k, v)| if v.is_empty() { k.clone() } else { format!("{k}={v}") }).collect();
        key.push_str(&q.join("&"));
    }
    Ok(key)
}

/// The platform's post id, where the URL shows it.
fn post_key(host: &str, seg: &[&str], query: &[(String, String)], original_host: &str) -> Option<String> {
    let at = |i: usize| seg.get(i).copied();
    let param = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).filter(|v| !v.is_empty());
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match host {
        "x.com" => {
            // /{user}/status/{id}, /i/web/status/{id}, /i/status/{id}
            let i = seg.iter().position(|s| *s == "status" || *s == "statuses")?;
            let id = at(i + 1).filter(|s| digits(s))?;
            Some(format!("x.com/status/{id}"))
        }
        "youtube.com" => {
            let id = if original_host.ends_with("youtu.be") {
                at(0).map(str::to_string)
            } else if at(0) == Some("watch") {
                param("v")
            } else if matches!(at(0), Some("shorts" | "embed" | "live" | "v")) {
                at(1).map(str::to_string)
            } else {
                None
            }?;
            Some(format!("youtube.com/watch/{id}"))
        }
        "tiktok.com" => {
            let i = seg.iter().position(|s| *s == "video" || *s == "photo")?;
            let id = at(i + 1).filter(|s| digits(s))?;
            Some(format!("tiktok.com/video/{id}"))
        }
        "instagram.com" => {
            let i = seg.iter().position(|s| matches!(*s, "p" | "reel" | "reels" | "tv"))?;
            Some(format!("instagram.com/p/{}", at(i + 1)?))
        }
        "facebook.com" => {
            if let Some(story) = param("story_fbid") {
                return Some(format!("facebook.com/post/{story}"));
            }
            if let Some(fbid) = param("fbid") {
                return Some(format!("facebook.com/photo/{fbid}"));
            }
            if at(0) == Some("watch") {
                return param("v").map(|v| format!("facebook.com/video/{v}"));
            }
            if let Some(i) = seg.iter().position(|s| matches!(*s, "posts" | "videos" | "reel" | "permalink")) {
                let kind = if seg[i] == "posts" || seg[i] == "permalink" { "post" } else { "video" };
                return at(i + 1).map(|id| format!("facebook.com/{kind}/{id}"));
            }
            None
        }
        "reddit.com" => {
            if original_host.ends_with("redd.it") {
                return at(0).map(|id| format!("reddit.com/comments/{}", id.to_ascii_lowercase()));
            }
            let i = seg.iter().position(|s| *s == "comments")?;
            Some(format!("reddit.com/comments/{}", at(i + 1)?.to_ascii_lowercase()))
        }
        "threads.net" => {
            let i = seg.iter().position(|s| *s == "post")?;
            Some(format!("threads.net/post/{}", at(i + 1)?))
        }
        "bsky.app" => {
            let i = seg.iter().position(|s| *s == "post")?;
            Some(format!("bsky.app/profile/{}/post/{}", at(i.checked_sub(1)?)?.to_ascii_lowercase(), at(i + 1)?))
        }
        "t.me" => {
            let (chan, n) = match (at(0), at(1), at(2)) {
                (Some("s"), Some(c), Some(n)) => (c, n),
                (Some(c), Some(n), _) => (c, n),
                _ => return None,
            };
            digits(n).then(|| format!("t.me/{}/{n}", chan.to_ascii_lowercase()))
        }
        _ => None,
    }
}

/// A claim's fingerprint: its MinHash signature, LSH band keys and anchors.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Fingerprint {
    pub signature: Vec<u32>,
    pub bands: Vec<i64>,
    /// Numbers (`#5`), proper names (`@maricopa`) and words (`=maricopa`), sorted, space
    /// separated (see [`terms`]).
    pub anchors: String,
}

impl Fingerprint {
    pub fn signature_hex(&self) -> String {
        self.signature.iter().map(|v| format!("{v:08x}")).collect()
    }
}

/// Reads a stored signature (`None` when damaged).
pub fn parse_signature(hex: &str) -> Option<Vec<u32>> {
    if hex.len() != SIGNATURE_LEN * 8 || !hex.is_ascii() {
        return None;
    }
    (0..SIGNATURE_LEN).map(|i| u32::from_str_radix(&hex[i * 8..i * 8 + 8], 16).ok()).collect()
}

const STOP_WORDS: &[&str] = &[
    "a", "an", "the", "and", "or", "but", "of", "to", "in", "on", "at", "for", "by", "with", "from", "is", "are", "was", "were", "be", "been", "being", "it", "its",
    "this", "that", "these", "those", "will", "would", "can", "could", "should", "has", "have", "had", "do", "does", "did", "not", "no", "you", "your", "they",
    "their", "them", "we", "our", "us", "he", "she", "his", "her", "i", "me", "my", "as", "if", "so", "than", "then", "there", "here", "all", "any", "now", "just",
    "only", "also", "about", "into", "over", "after", "before", "up", "out", "who", "what", "which", "when", "where", "how", "says", "said", "say", "claim",
    "claims", "post", "posts", "posted", "saying", "being", "get", "got", "because", "due", "per", "via", "s", "th", "st", "nd", "rd", "am", "pm",
];

const MONTHS: &[(&str, &str)] = &[
    ("january", "jan"), ("february", "feb"), ("march", "mar"), ("april", "apr"), ("june", "jun"), ("july", "jul"), ("august", "aug"), ("september", "sep"),
    ("sept", "sep"), ("october", "oct"), ("november", "nov"), ("december", "dec"),
];
const DAYS: &[(&str, &str)] =
    &[("monday", "mon"), ("tuesday", "tue"), ("tues", "tue"), ("wednesday", "wed"), ("thursday", "thu"), ("thurs", "thu"), ("friday", "fri"), ("saturday", "sat"), ("sunday", "sun")];
/// Capitalised words that are not names of a place or a person.
const NOT_NAMES: &[&str] = &[
    "county", "city", "state", "election", "day", "office", "officials", "official", "breaking", "voters", "voter", "voting", "vote", "polls", "poll", "polling",
    "the", "a", "an", "in", "on", "at", "all", "if", "this", "don", "do", "no", "yes", "urgent", "alert", "warning", "attention", "share", "please", "news",
    "secretary", "clerk", "board", "registrar", "department", "democrats", "republicans", "democrat", "republican", "id", "usps", "dmv", "ballot", "ballots",
];

fn stem(w: &str) -> String {
    for suffix in ["ations", "ation", "ings", "ing", "ers", "er", "ies", "ied", "es", "ed", "ly", "s", "e"] {
        if let Some(stem) = w.strip_suffix(suffix) {
            if stem.chars().count() >= 3 {
                return stem.to_string();
            }
        }
    }
    w.to_string()
}

/// Words of a claim (lowercase, digits split from letters), with whether each was capitalised
/// in the text and not at the start of a sentence.
fn words(text: &str) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    let mut sentence_start = true;
    let mut cur = String::new();
    let mut cur_digit = false;
    let mut cur_cap = false;
    let mut cur_start = false;
    let flush = |cur: &mut String, cap: bool, start: bool, out: &mut Vec<(String, bool)>| {
        if !cur.is_empty() {
            out.push((std::mem::take(cur), cap && !start));
        }
    };
    for ch in text.chars() {
        if ch.is_alphanumeric() {
            let digit = ch.is_ascii_digit();
            if !cur.is_empty() && digit != cur_digit {
                flush(&mut cur, cur_cap, cur_start, &mut out);
            }
            if cur.is_empty() {
                cur_digit = digit;
                cur_cap = ch.is_uppercase();
                cur_start = sentence_start;
                sentence_start = false;
            }
            cur.extend(ch.to_lowercase());
        } else {
            flush(&mut cur, cur_cap, cur_start, &mut out);
            if matches!(ch, '.' | '!' | '?' | ':' | '\n' | '"' | '“') {
                sentence_start = true;
            }
        }
    }
    flush(&mut cur, cur_cap, cur_start, &mut out);
    out
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
    z ^ (z >> 31)
}

/// The claim's terms (see the module note) and anchors: numbers (`#5`, `#nov`), proper names
/// (`@maricopa`, stemmed) and every word of the claim (`=maricopa`, stemmed), so that a name in
/// one claim can be looked for in the other.
pub fn terms(text: &str) -> (Vec<String>, BTreeSet<String>) {
    let mut terms = Vec::new();
    let mut anchors = BTreeSet::new();
    for (w, capitalised) in words(text) {
        if w.bytes().all(|b| b.is_ascii_digit()) {
            let n = w.trim_start_matches('0');
            let n = if n.is_empty() { "0" } else { n };
            anchors.insert(format!("#{n}"));
            terms.push(n.to_string());
            continue;
        }
        if let Some((_, short)) = MONTHS.iter().chain(DAYS).find(|(long, short)| w == *long || w == *short) {
            anchors.insert(format!("#{short}"));
            terms.push(short.to_string());
            continue;
        }
        let stemmed = stem(&w);
        anchors.insert(format!("={stemmed}"));
        if capitalised && w.chars().count() > 2 && !NOT_NAMES.contains(&w.as_str()) && !STOP_WORDS.contains(&w.as_str()) {
            anchors.insert(format!("@{stemmed}"));
        }
        if STOP_WORDS.contains(&w.as_str()) {
            continue;
        }
        terms.push(stemmed);
    }
    (terms, anchors)
}

/// The claim's fingerprint (see the module note).
pub fn fingerprint(text: &str) -> Fingerprint {
    let (terms, anchors) = terms(text);
    let mut shingles: BTreeSet<u64> = terms.iter().map(|t| fnv1a(t.as_bytes())).collect();
    for pair in terms.windows(2) {
        shingles.insert(fnv1a(format!("{} {}", pair[0], pair[1]).as_bytes()));
    }
    let mut signature = vec![u32::MAX; SIGNATURE_LEN];
    for s in &shingles {
        for (i, slot) in signature.iter_mut().enumerate() {
            let v = (mix(s ^ mix(i as u64 + 1)) >> 32) as u32;
            if v < *slot {
                *slot = v;
            }
        }
    }
    let bands = signature
        .chunks(BAND_ROWS)
        .enumerate()
        .map(|(b, rows)| {
            let mut bytes = (b as u64).to_le_bytes().to_vec();
            for r in rows {
                bytes.extend_from_slice(&r.to_le_bytes());
            }
            fnv1a(&bytes) as i64
        })
        .collect();
    Fingerprint { signature, bands, anchors: anchors.into_iter().collect::<Vec<_>>().join(" ") }
}

/// The estimated Jaccard similarity of two signatures.
pub fn similarity(a: &[u32], b: &[u32]) -> f64 {
    if a.is_empty() || a.len() != b.len() {
        return 0.0;
    }
    let same = a.iter().zip(b).filter(|(x, y)| x == y && **x != u32::MAX).count();
    same as f64 / a.len() as f64
}

/// Whether two claims' anchors allow them to be the same claim: the same numbers (dates,
/// times, counts) when both have some, and every proper name of each among the other's words
/// (the same claim about another county is another claim).
pub fn anchors_agree(a: &str, b: &str) -> bool {
    let pick = |s: &str, prefix: char| -> BTreeSet<String> { s.split_whitespace().filter_map(|t| t.strip_prefix(prefix)).map(str::to_string).collect() };
    let (na, nb) = (pick(a, '#'), pick(b, '#'));
    let numbers_ok = na.is_empty() || nb.is_empty() || na == nb;
    let names_ok = pick(a, '@').is_subset(&pick(b, '=')) && pick(b, '@').is_subset(&pick(a, '='));
    numbers_ok && names_ok
}

/// Whether a claim with fingerprint `new` is the claim of a case with `signature` and `anchors`.
pub fn same_claim(new: &Fingerprint, signature: &[u32], anchors: &str, min_similarity: f64) -> Option<f64> {
    let s = similarity(&new.signature, signature);
    (s >= min_similarity && anchors_agree(&new.anchors, anchors)).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_normalise_to_one_key_per_post() {
        let same = [
            ("https://twitter.com/someone/status/1789?s=20&t=abc", "https://x.com/other_name/status/1789/"),
            ("https://www.facebook.com/permalink.php?story_fbid=99&id=4&fbclid=IwAR", "https://m.facebook.com/story.php?story_fbid=99&id=4"),
            ("https://youtu.be/dQw4w9WgXcQ?si=xyz", "https://www.youtube.com/watch?v=dQw4w9WgXcQ&feature=share"),
            ("https://www.youtube.com/shorts/dQw4w9WgXcQ", "https://m.youtube.com/watch?v=dQw4w9WgXcQ"),
            ("https://www.tiktok.com/@user/video/7301?is_from_webapp=1", "https://tiktok.com/@other/video/7301"),
            ("https://www.instagram.com/reel/Cx9Ab/?igsh=MWQ", "https://instagram.com/p/Cx9Ab"),
            ("https://old.reddit.com/r/politics/comments/1abcde/some_title/", "https://redd.it/1abcde"),
            ("http://example.org/news/story/?utm_source=x&utm_medium=y&b=2&a=1", "example.org/news/story?a=1&b=2#top"),
        ];
        for (a, b) in same {
            assert_eq!(normalize_url(a).unwrap(), normalize_url(b).unwrap(), "{a} vs {b}");
        }
        assert_ne!(normalize_url("https://x.com/a/status/1").unwrap(), normalize_url("https://x.com/a/status/2").unwrap());
        assert_ne!(normalize_url("https://example.org/a?id=1").unwrap(), normalize_url("https://example.org/a?id=2").unwrap());
        assert!(normalize_url("javascript:alert(1)").is_err());
        assert!(normalize_url("file:///etc/passwd").is_err());
        assert!(normalize_url("").is_err());
        assert!(normalize_url(&format!("https://e.org/{}", "a".repeat(MAX_URL_LEN))).is_err());
    }

    #[test]
    fn paraphrases_join_and_other_dates_do_not() {
        let a = fingerprint("Polling places in Maricopa County close at 5pm on November 5");
        let b = fingerprint("BREAKING: Maricopa polls will close at 5 PM on Nov 5, get there early");
        let c = fingerprint("Polling places in Maricopa County close at 5pm on November 6");
        let d = fingerprint("Polling places in Pima County close at 5pm on November 5");
        assert!(same_claim(&a, &b.signature, &b.anchors, DEFAULT_MIN_SIMILARITY).is_some(), "{}", similarity(&a.signature, &b.signature));
        assert!(same_claim(&a, &c.signature, &c.anchors, DEFAULT_MIN_SIMILARITY).is_none());
        assert!(same_claim(&a, &d.signature, &d.anchors, DEFAULT_MIN_SIMILARITY).is_none());
        assert_eq!(parse_signature(&a.signature_hex()).unwrap(), a.signature);
        assert_eq!(a.bands.len(), BANDS);
    }
}
