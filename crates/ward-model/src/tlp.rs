//! The Traffic Light Protocol, version 2.0 (FIRST), as the hub marks and shares what it knows.
//!
//! Levels are ordered from the widest audience to the narrowest: `CLEAR < GREEN < AMBER <
//! AMBER+STRICT < RED`. A share "up to" a level (a peer's ceiling) admits every level at or below
//! it. Each level has the standard STIX 2.1 `marking-definition` object that OASIS published for
//! TLP 2.0 (fixed ids, so every STIX tool recognises them); TLP 1.0's ids and `TLP:WHITE` are
//! read as their 2.0 equivalents, so older feeds import.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One TLP 2.0 level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Tlp {
    Clear,
    Green,
    Amber,
    AmberStrict,
    Red,
}

/// The STIX extension definition under which the TLP 2.0 marking definitions are published.
pub const TLP2_EXTENSION: &str = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d";

impl Tlp {
    pub const ALL: [Tlp; 5] = [Tlp::Clear, Tlp::Green, Tlp::Amber, Tlp::AmberStrict, Tlp::Red];

    /// `TLP:CLEAR`, `TLP:GREEN`, `TLP:AMBER`, `TLP:AMBER+STRICT`, `TLP:RED`.
    pub fn label(self) -> &'static str {
        match self {
            Tlp::Clear => "TLP:CLEAR",
            Tlp::Green => "TLP:GREEN",
            Tlp::Amber => "TLP:AMBER",
            Tlp::AmberStrict => "TLP:AMBER+STRICT",
            Tlp::Red => "TLP:RED",
        }
    }

    /// The value of the `tlp_2_0` property in the standard marking definition.
    pub fn stix_value(self) -> &'static str {
        match self {
            Tlp::Clear => "clear",
            Tlp::Green => "green",
            Tlp::Amber => "amber",
            Tlp::AmberStrict => "amber+strict",
            Tlp::Red => "red",
        }
    }

    /// The standard STIX 2.1 id of this level's marking definition.
    pub fn stix_id(self) -> &'static str {
        match self {
            Tlp::Clear => "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
            Tlp::Green => "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
            Tlp::Amber => "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
            Tlp::AmberStrict => "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
            Tlp::Red => "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
        }
    }

    /// The level a STIX marking-definition id stands for: TLP 2.0's ids, and TLP 1.0's
    /// (`WHITE` is read as `CLEAR`). `None` for any other marking.
    pub fn from_stix_id(id: &str) -> Option<Tlp> {
        if let Some(t) = Tlp::ALL.into_iter().find(|t| t.stix_id() == id) {
            return Some(t);
        }
        match id {
            "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9" => Some(Tlp::Clear),
            "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da" => Some(Tlp::Green),
            "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82" => Some(Tlp::Amber),
            "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed" => Some(Tlp::Red),
            _ => None,
        }
    }

    /// The narrowest (most restrictive) level among several STIX marking refs, if any is TLP.
    pub fn from_marking_refs<'a>(refs: impl IntoIterator<Item = &'a str>) -> Option<Tlp> {
        refs.into_iter().filter_map(Tlp::from_stix_id).max()
    }

    /// The standard marking-definition object, as OASIS published it for TLP 2.0.
    pub fn marking_definition(self) -> serde_json::Value {
        serde_json::json!({
            "type": "marking-definition",
            "spec_version": "2.1",
            "id": self.stix_id(),
            "created": "2022-10-01T00:00:00.000Z",
            "name": self.label(),
            "extensions": {
                TLP2_EXTENSION: {
                    "extension_type": "property-extension",
                    "tlp_2_0": self.stix_value(),
                }
            }
        })
    }

    /// Whether something marked `self` may go to an audience cleared up to `ceiling`.
    pub fn within(self, ceiling: Tlp) -> bool {
        self <= ceiling
    }
}

impl fmt::Display for Tlp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// A TLP label that is not one of the five levels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlpError(pub String);

impl fmt::Display for TlpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown TLP level {:?}: use TLP:CLEAR, TLP:GREEN, TLP:AMBER, TLP:AMBER+STRICT or TLP:RED", self.0)
    }
}

impl std::error::Error for TlpError {}

impl FromStr for Tlp {
    type Err = TlpError;

    /// Accepts `TLP:AMBER+STRICT`, `amber+strict`, `AMBER_STRICT`, `tlp:white` (TLP 1.0) and the
    /// like, in any case, with or without the `TLP:` prefix.
    fn from_str(s: &str) -> Result<Tlp, TlpError> {
        let t = s.trim();
        let upper = t.to_ascii_uppercase();
        let bare = upper.strip_prefix("TLP:").or_else(|| upper.strip_prefix("TLP-")).unwrap_or(&upper);
        match bare.trim() {
            "CLEAR" | "WHITE" => Ok(Tlp::Clear),
            "GREEN" => Ok(Tlp::Green),
            "AMBER" => Ok(Tlp::Amber),
            "AMBER+STRICT" | "AMBER_STRICT" | "AMBER-STRICT" => Ok(Tlp::AmberStrict),
            "RED" => Ok(Tlp::Red),
            _ => Err(TlpError(s.chars().take(40).collect())),
        }
    }
}

impl Serialize for Tlp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.label())
    }
}

impl<'de> Deserialize<'de> for Tlp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Tlp, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_parse_back_and_order_from_widest_to_narrowest() {
        for t in Tlp::ALL {
            assert_eq!(t.label().parse::<Tlp>(), Ok(t));
            assert_eq!(t.stix_value().parse::<Tlp>(), Ok(t));
            assert_eq!(Tlp::from_stix_id(t.stix_id()), Some(t));
        }
        assert_eq!("tlp:white".parse::<Tlp>(), Ok(Tlp::Clear));
        assert!("TLP:PURPLE".parse::<Tlp>().is_err());
        assert!(Tlp::Clear < Tlp::Green && Tlp::Green < Tlp::Amber && Tlp::Amber < Tlp::AmberStrict && Tlp::AmberStrict < Tlp::Red);
        assert!(Tlp::Green.within(Tlp::Amber) && !Tlp::Red.within(Tlp::AmberStrict));
        let refs = [Tlp::Green.stix_id(), "marking-definition--00000000-0000-4000-8000-000000000000", Tlp::Amber.stix_id()];
        assert_eq!(Tlp::from_marking_refs(refs), Some(Tlp::Amber));
        assert_eq!(Tlp::from_stix_id("marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed"), Some(Tlp::Red));
    }
}
