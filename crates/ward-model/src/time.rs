//! Timestamps as captured packets carry them: seconds and microseconds since the Unix epoch, UTC.
//!
//! EVE writes them as `2016-02-17T14:22:02.892733+0000` (microseconds, a `+0000` offset without
//! a colon); [`Timestamp`] serialises to exactly that form and parses it back, along with the
//! RFC 3339 forms other tools write.

use std::fmt;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A point in time with microsecond resolution (the resolution of pcap and of EVE).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp {
    micros: i64,
}

impl Timestamp {
    pub const ZERO: Timestamp = Timestamp { micros: 0 };

    pub fn from_micros(micros: i64) -> Self {
        Timestamp { micros }
    }

    pub fn from_secs_micros(secs: i64, micros: u32) -> Self {
        Timestamp { micros: secs.saturating_mul(1_000_000).saturating_add(micros as i64) }
    }

    pub fn from_secs_nanos(secs: i64, nanos: u32) -> Self {
        Self::from_secs_micros(secs, nanos / 1000)
    }

    /// The current wall-clock time.
    pub fn now() -> Self {
        let now = Utc::now();
        Timestamp { micros: now.timestamp_micros() }
    }

    pub fn as_micros(self) -> i64 {
        self.micros
    }

    pub fn secs(self) -> i64 {
        self.micros.div_euclid(1_000_000)
    }

    pub fn subsec_micros(self) -> u32 {
        self.micros.rem_euclid(1_000_000) as u32
    }

    /// Whole seconds from `earlier` to `self`, never negative (EVE's `flow.age`).
    pub fn whole_secs_since(self, earlier: Timestamp) -> i64 {
        (self.secs() - earlier.secs()).max(0)
    }

    pub fn saturating_add_micros(self, micros: i64) -> Self {
        Timestamp { micros: self.micros.saturating_add(micros) }
    }

    pub fn to_datetime(self) -> DateTime<Utc> {
        DateTime::from_timestamp_micros(self.micros).unwrap_or_default()
    }

    /// Parses EVE's form and the usual RFC 3339 forms.
    pub fn parse(text: &str) -> Option<Self> {
        if let Ok(dt) = DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f%z") {
            return Some(Timestamp { micros: dt.timestamp_micros() });
        }
        if let Ok(dt) = DateTime::parse_from_rfc3339(text) {
            return Some(Timestamp { micros: dt.timestamp_micros() });
        }
        if let Ok(naive) = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f") {
            return Some(Timestamp { micros: naive.and_utc().timestamp_micros() });
        }
        None
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_datetime().format("%Y-%m-%dT%H:%M:%S%.6f+0000"))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Timestamp::parse(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("invalid timestamp {text:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_eve() {
        let ts = Timestamp::from_secs_micros(1455718922, 892733);
        assert_eq!(ts.to_string(), "2016-02-17T14:22:02.892733+0000");
        assert_eq!(Timestamp::parse("2016-02-17T14:22:02.892733+0000"), Some(ts));
        assert_eq!(Timestamp::parse("2016-02-17T14:22:02.892733Z"), Some(ts));
    }

    #[test]
    fn negative_and_garbage() {
        let ts = Timestamp::from_micros(-1);
        assert_eq!(ts.secs(), -1);
        assert_eq!(ts.subsec_micros(), 999_999);
        assert_eq!(Timestamp::parse("yesterday"), None);
    }
}
