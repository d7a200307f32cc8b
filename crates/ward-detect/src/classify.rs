//! `classification.config` (classtype → description and priority) and `reference.config`
//! (reference type → URL prefix), in Suricata's formats:
//!
//! ```text
//! config classification: trojan-activity,A Network Trojan was detected, 1
//! config reference: cve       https://cve.mitre.org/cgi-bin/cvename.cgi?name=
//! ```
//!
//! Malformed lines are skipped and counted, never fatal. The files are not embedded (Suricata's
//! are GPLv2): without them a rule's classtype is still carried, its category is the classtype
//! name and its severity [`DEFAULT_PRIORITY`]; references are written `type,value`.

use std::collections::HashMap;
use std::path::Path;

/// Priority (EVE severity) of a rule with no `priority` and an unknown or absent classtype;
/// Suricata uses 3 as well.
pub const DEFAULT_PRIORITY: u8 = 3;

/// One classtype.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassType {
    pub name: String,
    pub description: String,
    pub priority: u8,
}

/// Classtypes and reference prefixes.
#[derive(Debug, Clone)]
pub struct Classification {
    classes: HashMap<String, ClassType>,
    references: HashMap<String, String>,
    /// Lines that could not be read, for the load report.
    pub bad_lines: usize,
}

impl Default for Classification {
    fn default() -> Self {
        Classification::empty()
    }
}

impl Classification {
    /// No classtypes and no reference types.
    pub fn empty() -> Self {
        Classification { classes: HashMap::new(), references: HashMap::new(), bad_lines: 0 }
    }

    /// Loads classification.config and, if given, reference.config.
    pub fn load(classification: &Path, reference: Option<&Path>) -> std::io::Result<Self> {
        let mut c = Classification::empty();
        c.add_classification_text(&std::fs::read_to_string(classification)?);
        if let Some(r) = reference {
            c.add_reference_text(&std::fs::read_to_string(r)?);
        }
        Ok(c)
    }

    /// Loads `classification.config` and `reference.config` from the directory of `rules_file`
    /// when they exist there; missing or unreadable files leave the tables empty.
    pub fn beside(rules_file: &Path) -> Self {
        let dir = rules_file.parent().unwrap_or(Path::new("."));
        let mut c = Classification::empty();
        if let Ok(t) = std::fs::read_to_string(dir.join("classification.config")) {
            c.add_classification_text(&t);
        }
        if let Ok(t) = std::fs::read_to_string(dir.join("reference.config")) {
            c.add_reference_text(&t);
        }
        c
    }

    /// Adds `config classification: name,description,priority` lines.
    pub fn add_classification_text(&mut self, text: &str) {
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some(rest) = line.strip_prefix("config classification:") else {
                self.bad_lines += 1;
                continue;
            };
            let parts: Vec<&str> = rest.split(',').map(str::trim).collect();
            match (parts.first(), parts.len() >= 3, parts.last().and_then(|p| p.parse::<u8>().ok())) {
                (Some(name), true, Some(priority)) if !name.is_empty() => {
                    let description = parts[1..parts.len() - 1].join(",");
                    self.classes.insert(
                        name.to_string(),
                        ClassType { name: name.to_string(), description, priority },
                    );
                }
                _ => self.bad_lines += 1,
            }
        }
    }

    /// Adds `config reference: type prefix` lines.
    pub fn add_reference_text(&mut self, text: &str) {
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some(rest) = line.strip_prefix("config reference:") else {
                self.bad_lines += 1;
                continue;
            };
            let mut it = rest.split_whitespace();
            match (it.next(), it.next()) {
                (Some(kind), Some(prefix)) => {
                    self.references.insert(kind.to_ascii_lowercase(), prefix.to_string());
                }
                _ => self.bad_lines += 1,
            }
        }
    }

    pub fn class(&self, name: &str) -> Option<&ClassType> {
        self.classes.get(name)
    }

    /// `reference:cve,2021-44228` → `https://cve.mitre.org/cgi-bin/cvename.cgi?name=2021-44228`;
    /// an unknown type is kept as `type,value`.
    pub fn reference_url(&self, kind: &str, value: &str) -> String {
        match self.references.get(&kind.to_ascii_lowercase()) {
            Some(prefix) => format!("{prefix}{value}"),
            None => format!("{kind},{value}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ET: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data/et-open/");

    #[test]
    fn loads_suricata_files() {
        let c = Classification::load(
            Path::new(&format!("{ET}classification.config")),
            Some(Path::new(&format!("{ET}reference.config"))),
        )
        .unwrap();
        let t = c.class("trojan-activity").unwrap();
        assert_eq!(t.description, "A Network Trojan was detected");
        assert_eq!(t.priority, 1);
        assert_eq!(c.reference_url("url", "example.org/x"), "https://example.org/x");
        assert_eq!(c.reference_url("nope", "v"), "nope,v");
        assert_eq!(c.bad_lines, 0);
    }

    #[test]
    fn default_is_empty() {
        let d = Classification::default();
        assert!(d.class("misc-attack").is_none());
        assert_eq!(d.reference_url("cve", "2020-1"), "cve,2020-1");
    }

    #[test]
    fn bad_lines_are_counted() {
        let mut c = Classification::empty();
        c.add_classification_text("config classification: a,b,x\nnonsense\nconfig classification: ok,Fine,3\n");
        assert_eq!(c.bad_lines, 2);
        assert_eq!(c.class("ok").unwrap().priority, 3);
    }
}
