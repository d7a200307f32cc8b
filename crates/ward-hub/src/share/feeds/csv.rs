//! Plain lists: one indicator a line, as abuse.ch, Spamhaus DROP and most blocklists publish
//! them — IP addresses, CIDR networks, domains (URLs when the feed allows them).
//!
//! * Blank lines and comments (`#`, `;`, `//` at the start of a line) are skipped.
//! * Without a column, the indicator is the line's first field: up to the first whitespace,
//!   `,`, `;` or `#` (`198.51.100.0/24 ; SBL123` reads `198.51.100.0/24`).
//! * With a column (0-based), the line is a CSV record: fields split on `,`, double-quoted
//!   fields may hold commas and `""`.
//! * The whole list is one group: a poll replaces it, so a line that is gone is withdrawn.
//!   Values are deduplicated; the same value on two lines is one indicator.
//!
//! Bounds: lines longer than [`MAX_LINE_BYTES`] are skipped as unreadable; at most
//! [`MAX_LINES`] lines are read (the response itself is bounded by the fetcher).

use super::{FeedItem, ItemRules, Skip, Skipped};

/// Longest line read (a URL list's longest reasonable line).
pub const MAX_LINE_BYTES: usize = 8 * 1024;
/// Lines read at most.
pub const MAX_LINES: usize = 4_000_000;
/// Fields split per CSV record at most.
const MAX_FIELDS: usize = 256;

/// What a list held.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListParse {
    pub items: Vec<FeedItem>,
    pub skipped: Skipped,
    /// Lines that held something (not blank, not a comment).
    pub entries: usize,
    /// Lines past [`MAX_LINES`], not read.
    pub truncated: bool,
}

/// Reads a list. Never fails: what cannot be read is counted in `skipped`.
pub fn parse(body: &[u8], column: Option<usize>, rules: &ItemRules) -> ListParse {
    let mut out = ListParse::default();
    let mut seen = std::collections::HashSet::new();
    for (n, line) in body.split(|&b| b == b'\n').enumerate() {
        if n >= MAX_LINES {
            out.truncated = true;
            break;
        }
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let text = String::from_utf8_lossy(line);
        let text = text.trim_start_matches('\u{feff}').trim();
        if text.is_empty() || text.starts_with('#') || text.starts_with(';') || text.starts_with("//") {
            continue;
        }
        out.entries += 1;
        if line.len() > MAX_LINE_BYTES {
            out.skipped.add(Skip::Unreadable);
            continue;
        }
        let value = match column {
            None => text.split(|c: char| c.is_whitespace() || c == ',' || c == ';' || c == '#').next().unwrap_or(""),
            Some(col) => match field(text, col) {
                Some(v) => v,
                None => {
                    out.skipped.add(Skip::Unreadable);
                    continue;
                }
            },
        };
        let value = value.trim().trim_matches('"');
        match rules.item("", value, None, None, None, None) {
            Ok(item) => {
                if seen.insert((item.kind, item.value.clone())) {
                    out.items.push(item);
                }
            }
            Err(why) => out.skipped.add(why),
        }
    }
    out
}

/// Field `col` of a CSV record (quotes removed), or `None` when the record is shorter.
fn field(line: &str, col: usize) -> Option<&str> {
    if col >= MAX_FIELDS {
        return None;
    }
    let bytes = line.as_bytes();
    let (mut i, mut index) = (0usize, 0usize);
    loop {
        // One field starts at i.
        let start = i;
        if bytes.get(i) == Some(&b'"') {
            i += 1;
            loop {
                match bytes.get(i) {
                    None => break,
                    Some(b'"') if bytes.get(i + 1) == Some(&b'"') => i += 2,
                    Some(b'"') => {
                        i += 1;
                        break;
                    }
                    Some(_) => i += 1,
                }
            }
        }
        while i < bytes.len() && bytes[i] != b',' {
            i += 1;
        }
        let end = i;
        if index == col {
            // Quotes at the ends are trimmed by the caller; a doubled quote inside never makes
            // a valid indicator anyway.
            return line.get(start..end);
        }
        if i >= bytes.len() {
            return None;
        }
        i += 1; // the comma
        index += 1;
        if index > MAX_FIELDS {
            return None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_lists_with_comments_and_noise() {
        let body = b"# abuse.ch style\n\n185.220.101.7\r\n185.220.101.7\n; comment\n45.155.205.0/24 ; SBL123\nbad.example # why\n10.0.0.1\nnot a value\n\xff\xfe\n2a0b:f4c0::/32\n";
        let got = parse(body, None, &ItemRules::permissive(0));
        let values: Vec<&str> = got.items.iter().map(|i| i.value.as_str()).collect();
        assert_eq!(values, ["185.220.101.7", "45.155.205.0/24", "bad.example", "2a0b:f4c0::/32"]);
        assert_eq!(got.entries, 8);
        assert_eq!(got.skipped.0.get(&Skip::NotBlockable), Some(&1));
        assert_eq!(got.skipped.0.get(&Skip::Unreadable), Some(&2));
    }

    #[test]
    fn csv_columns_and_quotes() {
        let body = b"\"first_seen\",\"dst_ip\",\"port\"\n\"2026-01-01 00:00:00\",\"185.220.101.7\",\"443\"\n2026-01-02,\"45.155.205.9\",80\nshort\n\"a,b\",\"185.220.101.8\",1\n";
        let got = parse(body, Some(1), &ItemRules::permissive(0));
        let values: Vec<&str> = got.items.iter().map(|i| i.value.as_str()).collect();
        assert_eq!(values, ["185.220.101.7", "45.155.205.9", "185.220.101.8"]);
        assert_eq!(got.skipped.total(), 2, "the header's dst_ip and the short line");
        assert_eq!(field("a,\"b,c\",d", 2), Some("d"));
        assert_eq!(field("a,b", 5), None);
        assert_eq!(field("a,b", 10_000), None);
    }
}
