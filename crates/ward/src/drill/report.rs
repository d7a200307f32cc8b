//! Placeholder until the report renderer lands: writes the outcome as JSON.

use std::path::{Path, PathBuf};

use super::outcome::DrillOutcome;

pub fn write_all(outcome: &DrillOutcome, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let p = dir.join("outcome.json");
    std::fs::write(&p, serde_json::to_vec_pretty(outcome)?)?;
    Ok(vec![p])
}
