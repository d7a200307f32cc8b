//! Human byte sizes: `1GiB`, `512MiB`, `500MB`, `64k`, `1.5G`, `1234`.
//!
//! Binary suffixes (`KiB`, `MiB`, `GiB`, `TiB`) and bare `K`/`M`/`G`/`T` are powers of 1024;
//! `KB`/`MB`/`GB`/`TB` are powers of 1000, as `dd` and `df` read them.

/// Errors of [`parse_size`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("cannot read size {input:?}: {reason}; write e.g. 1GiB, 512MiB, 500MB or 1048576")]
pub struct SizeError {
    pub input: String,
    pub reason: &'static str,
}

/// Parses a byte size.
pub fn parse_size(s: &str) -> Result<u64, SizeError> {
    let err = |reason| SizeError { input: s.to_string(), reason };
    let t = s.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    if num.is_empty() {
        return Err(err("no number"));
    }
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        _ => return Err(err("unknown unit")),
    };
    let v: f64 = num.parse().map_err(|_| err("not a number"))?;
    let bytes = v * mult as f64;
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err(err("too large"));
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(parse_size("1GiB").unwrap(), 1 << 30);
        assert_eq!(parse_size("1G").unwrap(), 1 << 30);
        assert_eq!(parse_size("500MB").unwrap(), 500_000_000);
        assert_eq!(parse_size("64k").unwrap(), 65_536);
        assert_eq!(parse_size("1.5GiB").unwrap(), 3 << 29);
        assert_eq!(parse_size(" 1234 ").unwrap(), 1234);
        assert!(parse_size("GiB").is_err());
        assert!(parse_size("12 parsecs").is_err());
        assert!(parse_size("1.2.3M").is_err());
        assert!(parse_size("99999999999T").is_err());
    }
}
