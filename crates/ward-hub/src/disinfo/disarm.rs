//! DISARM technique ids: the DISARM Red Framework (DISARM Foundation, CC BY-SA 4.0,
//! <https://github.com/DISARMFoundation/DISARMframeworks>), read from its STIX 2.1 bundle
//! (`../shared/data/disarm/DISARM.json`, embedded at build time and parsed once into an
//! id → name table). Wherever a technique's name is shown, [`ATTRIBUTION`] goes with it.

use std::collections::BTreeMap;
use std::sync::OnceLock;

/// Shown with technique names (the licence asks for it).
pub const ATTRIBUTION: &str = "DISARM Framework © DISARM Foundation, CC BY-SA 4.0";
/// Technique ids per report.
pub const MAX_TECHNIQUES: usize = 20;

static BUNDLE: &str = include_str!("../../../../../shared/data/disarm/DISARM.json");

/// Technique id (`T0049`, `T0049.001`) → name.
pub fn techniques() -> &'static BTreeMap<String, String> {
    static TABLE: OnceLock<BTreeMap<String, String>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut table = BTreeMap::new();
        let Ok(bundle) = serde_json::from_str::<serde_json::Value>(BUNDLE) else { return table };
        for o in bundle["objects"].as_array().into_iter().flatten().filter(|o| o["type"] == "attack-pattern") {
            let id = o["external_references"].as_array().into_iter().flatten().find_map(|r| r["external_id"].as_str());
            if let (Some(id), Some(name)) = (id, o["name"].as_str()) {
                table.insert(id.to_string(), name.to_string());
            }
        }
        table
    })
}

/// The technique's name, or why the id is refused.
pub fn check(id: &str) -> Result<&'static str, String> {
    techniques().get(id).map(String::as_str).ok_or_else(|| {
        let shown: String = id.chars().take(20).collect();
        format!("{shown:?} is not a DISARM technique id (such as T0049 or T0049.001)")
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_framework_is_read_and_ids_are_checked() {
        assert!(super::techniques().len() >= 390, "{}", super::techniques().len());
        assert!(super::check("T0049").is_ok());
        assert!(super::check("T0049.001").is_ok());
        assert!(super::check("T9999").is_err());
        assert!(super::check("<script>").is_err());
    }
}
