//! Rule text to a raw rule: the header split into its seven fields and the option list split into
//! `(keyword, value)` pairs, exactly as written. No keyword is interpreted here; compiling
//! ([`crate::rule`]) does that.
//!
//! Syntax handled: `action proto src sport dir dst dport (opt; opt:value; ...)`, `dir` being `->`
//! or `<>`; brackets in header fields may contain spaces; option values may be quoted, with `\;`,
//! `\"` and `\\` escapes; a line ending in `\` continues on the next line ([`split_rules`]).
//!
//! Limits: a rule is at most [`MAX_RULE_LEN`] bytes and has at most [`MAX_OPTIONS`] options.

/// Longest rule accepted (bytes). ET's longest enabled rule is about 13 KB (IP lists).
pub const MAX_RULE_LEN: usize = 256 * 1024;
/// Most options in one rule; ET's largest has about 60.
pub const MAX_OPTIONS: usize = 1024;

/// A syntax error in a rule's text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyntaxError {
    #[error("rule longer than {MAX_RULE_LEN} bytes")]
    TooLong,
    #[error("rule header is incomplete: expected `action proto src sport -> dst dport (options)`")]
    ShortHeader,
    #[error("bad direction {0:?}: expected -> or <>")]
    BadDirection(String),
    #[error("missing `(` before the options")]
    NoOptions,
    #[error("options do not end with `)`")]
    Unterminated,
    #[error("unterminated quoted value in option {0:?}")]
    Quote(String),
    #[error("more than {MAX_OPTIONS} options")]
    TooManyOptions,
    #[error("empty option keyword")]
    EmptyKeyword,
    /// An option ran into the next one: `content:"abc" sid:1` (the `;` after `"abc"` is
    /// missing). Taking it as written would drop the swallowed option, e.g. a rule's content.
    #[error("option {keyword:?} does not end where its value does (text after it: {rest:?}): is a `;` missing?")]
    Unseparated { keyword: String, rest: String },
}

/// One option of a rule: keyword and its value as written (trimmed, quotes kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawOption {
    pub keyword: String,
    pub value: Option<String>,
}

/// A rule split into fields, before any keyword is interpreted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRule {
    pub action: String,
    pub proto: String,
    pub src: String,
    pub sport: String,
    pub bidirectional: bool,
    pub dst: String,
    pub dport: String,
    pub options: Vec<RawOption>,
}

impl RawRule {
    /// The value of the first option with this keyword.
    pub fn option(&self, keyword: &str) -> Option<&str> {
        self.options.iter().find(|o| o.keyword == keyword).and_then(|o| o.value.as_deref())
    }

    /// The `sid`, if the option is present and numeric.
    pub fn sid(&self) -> Option<u64> {
        self.option("sid").and_then(|s| s.trim().parse().ok())
    }
}

/// A rule's text and the line (1-based) where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleText {
    pub line: usize,
    pub text: String,
}

/// Splits a rules file into rule texts: skips blank lines and `#` comments (commented-out rules
/// are not rules), joins lines ending in `\`.
pub fn split_rules(file: &str) -> Vec<RuleText> {
    let mut out = Vec::new();
    let mut pending: Option<RuleText> = None;
    for (idx, line) in file.lines().enumerate() {
        let trimmed = line.trim();
        if let Some(p) = pending.as_mut() {
            if let Some(stripped) = trimmed.strip_suffix('\\') {
                p.text.push_str(stripped);
                continue;
            }
            p.text.push_str(trimmed);
            out.push(pending.take().expect("pending checked above"));
            continue;
        }
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if let Some(stripped) = trimmed.strip_suffix('\\') {
            pending = Some(RuleText { line: idx + 1, text: stripped.to_string() });
        } else {
            out.push(RuleText { line: idx + 1, text: trimmed.to_string() });
        }
    }
    if let Some(p) = pending {
        out.push(p);
    }
    out
}

/// Splits one rule's text into its fields and options.
pub fn parse_rule(text: &str) -> Result<RawRule, SyntaxError> {
    if text.len() > MAX_RULE_LEN {
        return Err(SyntaxError::TooLong);
    }
    let text = text.trim();
    let open = find_options_start(text).ok_or(SyntaxError::NoOptions)?;
    let header = &text[..open];
    let fields = split_header(header);
    if fields.len() < 7 {
        return Err(SyntaxError::ShortHeader);
    }
    if fields.len() > 7 {
        return Err(SyntaxError::BadDirection(fields[4].to_string()));
    }
    let bidirectional = match fields[4] {
        "->" => false,
        "<>" => true,
        other => return Err(SyntaxError::BadDirection(other.to_string())),
    };
    let body = text[open + 1..].trim_end();
    let body = body.strip_suffix(')').ok_or(SyntaxError::Unterminated)?;
    let options = split_options(body)?;
    Ok(RawRule {
        action: fields[0].to_string(),
        proto: fields[1].to_string(),
        src: fields[2].to_string(),
        sport: fields[3].to_string(),
        bidirectional,
        dst: fields[5].to_string(),
        dport: fields[6].to_string(),
        options,
    })
}

/// The `(` that opens the options: the first one outside brackets.
fn find_options_start(text: &str) -> Option<usize> {
    let mut depth = 0i32;
    for (i, c) in text.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            '(' if depth <= 0 => return Some(i),
            _ => {}
        }
    }
    None
}

/// Splits the header on whitespace outside brackets.
fn split_header(header: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut start: Option<usize> = None;
    for (i, c) in header.char_indices() {
        match c {
            '[' => depth += 1,
            ']' => depth -= 1,
            _ => {}
        }
        if c.is_whitespace() && depth <= 0 {
            if let Some(s) = start.take() {
                out.push(&header[s..i]);
            }
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(s) = start {
        out.push(&header[s..]);
    }
    out
}

/// Splits `k1; k2:v2; k3:"quoted \; value";` into options.
fn split_options(body: &str) -> Result<Vec<RawOption>, SyntaxError> {
    let mut out = Vec::new();
    let bytes = body.as_bytes();
    let mut i = 0;
    let mut start = 0;
    let mut in_quote = false;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => {
                i += 2;
                continue;
            }
            b'"' => in_quote = !in_quote,
            b';' if !in_quote => {
                push_option(&body[start..i], &mut out)?;
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    let rest = body.get(start..).unwrap_or("").trim();
    if in_quote {
        return Err(SyntaxError::Quote(rest.chars().take(40).collect()));
    }
    if !rest.is_empty() {
        // Suricata requires the last option to end with `;`; be lenient like most tools.
        push_option(rest, &mut out)?;
    }
    Ok(out)
}

fn push_option(text: &str, out: &mut Vec<RawOption>) -> Result<(), SyntaxError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(());
    }
    if out.len() >= MAX_OPTIONS {
        return Err(SyntaxError::TooManyOptions);
    }
    let (keyword, value) = match text.find(':') {
        Some(pos) => (text[..pos].trim(), Some(text[pos + 1..].trim().to_string())),
        None => (text, None),
    };
    if keyword.is_empty() {
        return Err(SyntaxError::EmptyKeyword);
    }
    // A keyword is one word: `nocase sid:1` is two options without the `;` between them.
    if let Some(space) = keyword.find(char::is_whitespace) {
        return Err(unseparated(&keyword[..space], &text[space..]));
    }
    if let Some(rest) = value.as_deref().and_then(after_quoted_value) {
        return Err(unseparated(keyword, rest));
    }
    out.push(RawOption { keyword: keyword.to_ascii_lowercase(), value });
    Ok(())
}

fn unseparated(keyword: &str, rest: &str) -> SyntaxError {
    SyntaxError::Unseparated { keyword: keyword.to_ascii_lowercase(), rest: rest.trim().chars().take(40).collect() }
}

/// For a value that is a quoted string (`"abc"`, `!"abc"`): the text after a quote that ends
/// it early, when a rule option follows that quote (`"abc" sid:1`, `"x" content:"abc"`,
/// `"abc" nocase`): the next option run in because a `;` is missing. Other unescaped quotes
/// inside the value are left alone, as Suricata leaves them (ET's pcre values hold some).
fn after_quoted_value(value: &str) -> Option<&str> {
    let quoted = value.strip_prefix('!').map_or(value, str::trim_start);
    let body = quoted.strip_prefix('"')?;
    let bytes = body.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => {
                let rest = body[i + 1..].trim();
                if starts_with_option(rest) {
                    return Some(rest);
                }
                i += 1;
            }
            _ => i += 1,
        }
    }
    None
}

/// `text` reads as a rule option: a keyword, then `:` or nothing more.
fn starts_with_option(text: &str) -> bool {
    let word_len = text.find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))).unwrap_or(text.len());
    let (word, after) = text.split_at(word_len);
    word.starts_with(|c: char| c.is_ascii_alphabetic()) && (after.trim_start().is_empty() || after.trim_start().starts_with(':'))
}

/// Removes surrounding quotes and the escapes `\"`, `\;`, `\\`, `\:` of a quoted option value.
pub fn unquote(value: &str) -> String {
    let v = value.trim();
    let inner = if v.len() >= 2 && v.starts_with('"') && v.ends_with('"') { &v[1..v.len() - 1] } else { v };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some(n) => out.push(n),
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_header_and_options() {
        let r = parse_rule(r#"alert tcp [1.2.3.4, 5.6.7.8] any -> $HOME_NET [80,443] (msg:"a \"b\"; c"; content:"x|3b|"; nocase; sid:1;)"#)
            .unwrap();
        assert_eq!(r.action, "alert");
        assert_eq!(r.src, "[1.2.3.4, 5.6.7.8]");
        assert_eq!(r.dport, "[80,443]");
        assert!(!r.bidirectional);
        assert_eq!(r.options.len(), 4);
        assert_eq!(unquote(r.option("msg").unwrap()), r#"a "b"; c"#);
        assert_eq!(r.options[2], RawOption { keyword: "nocase".into(), value: None });
        assert_eq!(r.sid(), Some(1));
    }

    #[test]
    fn errors() {
        assert_eq!(parse_rule("alert tcp any any -> any (sid:1;)"), Err(SyntaxError::ShortHeader));
        assert_eq!(parse_rule("alert tcp any any => any any (sid:1;)"), Err(SyntaxError::BadDirection("=>".into())));
        assert_eq!(parse_rule("alert tcp any any -> any any sid:1;"), Err(SyntaxError::NoOptions));
        assert_eq!(parse_rule("alert tcp any any -> any any (sid:1;"), Err(SyntaxError::Unterminated));
        assert!(matches!(parse_rule(r#"alert tcp any any -> any any (msg:"x; sid:1;)"#), Err(SyntaxError::Quote(_))));
        assert!(parse_rule("alert tcp any any <> any any (sid:1;)").unwrap().bidirectional);
    }

    #[test]
    fn a_missing_semicolon_is_an_error_not_a_swallowed_option() {
        let missing = [
            (r#"alert tcp any any -> any any (msg:"x"; content:"abc" sid:1;)"#, "content", "sid:1"),
            (r#"alert tcp any any -> any any (msg:"x" content:"abc"; sid:1;)"#, "msg", r#"content:"abc""#),
            (r#"alert tcp any any -> any any (content:!"abc" depth:4; sid:1;)"#, "content", "depth:4"),
            (r#"alert tcp any any -> any any (content:"abc"; nocase sid:1;)"#, "nocase", "sid:1"),
        ];
        for (rule, keyword, rest) in missing {
            assert_eq!(
                parse_rule(rule),
                Err(SyntaxError::Unseparated { keyword: keyword.into(), rest: rest.into() }),
                "{rule}"
            );
        }
        // Quotes inside a value, escapes and a final option without `;` are still fine; so are
        // the unescaped quotes of ET's pcre values.
        let ok = parse_rule(r#"alert tcp any any -> any any (msg:"a \"b\" c"; content:!"x\"y"; dataset:isset,ips,type string,load "f.lst"; pcre:"/(%22|")org(%22|")/Rsi"; sid:1)"#)
            .unwrap();
        assert_eq!(ok.options.len(), 5);
        assert_eq!(ok.sid(), Some(1));
    }

    #[test]
    fn split_rules_skips_comments_and_joins_continuations() {
        let f = "# comment\n\n#alert tcp any any -> any any (sid:9;)\nalert tcp any any -> any any (msg:\"a\"; \\\n sid:1;)\nalert udp any any -> any any (sid:2;)\n";
        let rules = split_rules(f);
        assert_eq!(rules.len(), 2);
        assert_eq!(rules[0].line, 4);
        assert!(rules[0].text.ends_with("sid:1;)"));
        assert_eq!(rules[1].line, 6);
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in ".{0,300}") {
            let _ = parse_rule(&s);
            let _ = split_rules(&s);
            let _ = unquote(&s);
        }
    }
}
