//! `ward demo --once` end to end: the real binary starts the hub (HTTPS, SQLite), enrolls five
//! sensors, runs them over the generated campaign traffic, relays through their spools, and
//! must see every expected warning arrive. Exit code 0 is the demo's own verdict; the output is
//! checked too, so a demo that claims success without the story behind it fails here.

use std::process::Command;

#[test]
fn demo_once_warns_every_targeted_office() {
    let dir = tempfile::tempdir().unwrap();
    let demo_dir = dir.path().join("demo");
    let out = Command::new(env!("CARGO_BIN_EXE_ward"))
        .args(["demo", "--once", "--listen", "127.0.0.1:0", "--traffic-kib", "512", "--dir"])
        .arg(&demo_dir)
        .output()
        .expect("run ward demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "ward demo --once failed\nstdout:\n{stdout}\nstderr:\n{stderr}");
    for expected in [
        "campaign #1",
        "ip:198.18.23.66",
        "Adams County       email",
        "Baker County       webhook",
        "Clark County       webhook",
        "signatures valid: true",
        "indicator push: State of Franklin  has 198.18.23.66",
        "acknowledgement: Adams County acknowledged its warning with one click",
        "state roll-up: State of Franklin told once",
        "federation: the State of Lincoln's hub (a second hub) put 198.18.23.66 on its own sensors' list",
        "of its counties were hit: ",
        "retro-hunt: Dover County had contact with the actor",
        "Baker County looked up voter-roll-update.example: alert raised",
        "STIX 2.1 export (TLP:AMBER, offices anonymised): 1 campaign(s)",
        "demo: every expected warning arrived",
    ] {
        assert!(stdout.contains(expected), "missing {expected:?} in the demo output:\n{stdout}");
    }
    // The STIX export holds the actor's indicator and names no office.
    let stix = std::fs::read_to_string(demo_dir.join("campaigns.stix.json")).unwrap();
    let bundle: serde_json::Value = serde_json::from_str(&stix).unwrap();
    assert_eq!(bundle["type"], "bundle");
    assert!(stix.contains("[ipv4-addr:value = '198.18.23.66']"), "{stix}");
    assert!(!stix.contains("Adams County") && stix.contains("a county in "), "{stix}");
    // Each sensor wrote its own EVE file, and the Adams sensor saw the SQL injection.
    let adams = std::fs::read_to_string(demo_dir.join("adams/eve.json")).unwrap();
    assert!(adams.contains("\"signature_id\":9000001"), "no SQL injection alert in adams/eve.json");

    // A second run into the same directory wipes the earlier demo; a foreign directory is refused.
    let foreign = dir.path().join("foreign");
    std::fs::create_dir_all(&foreign).unwrap();
    std::fs::write(foreign.join("precious.txt"), "keep me").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ward"))
        .args(["demo", "--once", "--listen", "127.0.0.1:0", "--dir"])
        .arg(&foreign)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not from an earlier demo"));
    assert!(foreign.join("precious.txt").exists());

    // A demo directory in use (its lock held, as a serving `ward demo` holds it) is left alone.
    let lock = std::fs::File::open(demo_dir.join(".ward-demo.lock")).unwrap();
    lock.try_lock().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ward"))
        .args(["demo", "--once", "--listen", "127.0.0.1:0", "--dir"])
        .arg(&demo_dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("another `ward demo` is running"), "{stderr}");
    assert!(stderr.lines().count() <= 3, "one clear error, not a cascade:\n{stderr}");
    assert!(demo_dir.join("campaigns.stix.json").exists(), "the running demo's directory was wiped");
}
