//! The OASIS tools as referees: stix2-validator and the stix2 parser (pip packages that
//! scripts/setup-test-env.sh installs) over what the hub writes.

use std::process::Command;

use serde_json::Value;

/// Runs the OASIS validator and parser over a bundle; returns the validator's warnings.
pub fn check(bundle: &Value) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bundle.json");
    std::fs::write(&path, serde_json::to_vec_pretty(bundle).unwrap()).unwrap();
    let script = r#"
import json, sys
from stix2validator import validate_file, ValidationOptions
import stix2
results = validate_file(sys.argv[1], ValidationOptions(version="2.1"))
for r in results.object_results:
    for e in r.errors:
        print("ERROR", r.object_id, e)
    for w in r.warnings:
        print("WARNING", r.object_id, w)
parsed = stix2.parse(open(sys.argv[1]).read(), allow_custom=False)
print("PARSED", len(parsed.objects))
print("VALID" if results.is_valid else "INVALID")
"#;
    let out = Command::new("python3").arg("-c").arg(script).arg(&path).output().expect("python3 is needed");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the OASIS tools failed (install them with scripts/setup-test-env.sh: pip install stix2-validator==3.2.0 stix2)\n{stdout}\n{stderr}"
    );
    assert!(stdout.lines().any(|l| l == "VALID"), "stix2-validator refused the bundle:\n{stdout}");
    let n = bundle["objects"].as_array().unwrap().len();
    assert!(stdout.contains(&format!("PARSED {n}")), "stix2 did not parse every object:\n{stdout}");
    stdout.lines().filter(|l| l.starts_with("WARNING")).map(str::to_string).collect()
}
