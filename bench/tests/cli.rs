//! End-to-end tests of the two binaries: generate a real capture with `gen-pcap`, then
//! benchmark real commands over it with `bench-sensor --cmd` (the sensor itself is benchmarked
//! the same way once `ward sensor` exists).

use std::path::{Path, PathBuf};
use std::process::Command;

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ward-bench-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn gen(out: &Path, size: &str, seed: &str) -> serde_json::Value {
    let o = Command::new(env!("CARGO_BIN_EXE_gen-pcap"))
        .args(["--size", size, "--seed", seed, "--hosts", "40", "--json", "--out"])
        .arg(out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn bench(args: &[&str]) -> (i32, serde_json::Value, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_bench-sensor")).args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    let json = serde_json::from_slice(&o.stdout).unwrap_or(serde_json::Value::Null);
    (o.status.code().unwrap_or(-1), json, stderr)
}

#[test]
fn gen_pcap_writes_the_size_and_packets_it_reports() {
    let out = tmp("gen.pcap");
    let v = gen(&out, "3MiB", "5");
    let s = &v["summary"];
    let len = std::fs::metadata(&out).unwrap().len();
    assert_eq!(s["file_bytes"].as_u64().unwrap(), len);
    assert!((3 << 20..(3 << 20) + 70_000).contains(&len));
    let t = ward_bench::pcap::count_capture(&out).unwrap();
    assert_eq!(t.packets, s["packets"].as_u64().unwrap());
    assert_eq!(t.captured_bytes, s["frame_bytes"].as_u64().unwrap());
    assert!(v["mb_per_s"].as_f64().unwrap() > 0.0);
    // Bad input is a clear error, not a panic.
    let o = Command::new(env!("CARGO_BIN_EXE_gen-pcap")).args(["--size", "lots", "--out"]).arg(&out).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot read size"));
}

#[test]
fn bench_sensor_measures_a_command_over_a_generated_capture() {
    let pcap = tmp("bench.pcap");
    let g = gen(&pcap, "2MiB", "9");
    let packets = g["summary"]["packets"].as_u64().unwrap();
    let p = pcap.to_str().unwrap();
    // The stand-in reads the whole capture and prints a JSON stats line, as the sensor will.
    let cmd = r#"sh -c "cat '{pcap}' > /dev/null; echo '{\"workers\": {workers}}'""#;
    let (code, v, err) = bench(&["--pcap", p, "--cmd", cmd, "--workers", "1,3", "--runs", "3", "--json"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(v["inputs"][0]["totals"]["packets"].as_u64().unwrap(), packets);
    let rows = v["results"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    for (row, w) in rows.iter().zip([1, 3]) {
        assert_eq!(row["workers"], w);
        assert_eq!(row["runs"], 3);
        assert_eq!(row["samples"].as_array().unwrap().len(), 3);
        assert_eq!(row["program_stats"]["workers"], w, "stdout JSON line of the program is kept");
        let wall = &row["wall_s"];
        let (min, med, max) = (wall["min"].as_f64().unwrap(), wall["median"].as_f64().unwrap(), wall["max"].as_f64().unwrap());
        assert!(min > 0.0 && min <= med && med <= max);
        let pps = row["packets_per_s"]["median"].as_f64().unwrap();
        // packets/s is the capture's packet count over the median-run wall time (odd count).
        assert!((pps - packets as f64 / med).abs() / pps < 1e-9);
        assert!(row["peak_rss_mib"]["max"].as_f64().unwrap() > 0.0);
    }
    // The human table names every configuration.
    let (code, _, _) = bench(&["--pcap", p, "--cmd", "cat {pcap}", "--workers", "1", "--runs", "1", "-q"]);
    assert_eq!(code, 0);
}

#[test]
fn compare_reports_the_ratio_and_enforces_the_floor() {
    let pcap = tmp("cmp.pcap");
    gen(&pcap, "1MiB", "2");
    let p = pcap.to_str().unwrap();
    // Variant args are appended: A sleeps 0.05 s, B 0.5 s, so B/A throughput is about 0.1.
    let cmd = r#"sh -c "sleep \"$1\"" sleeper"#;
    let args = ["--pcap", p, "--cmd", cmd, "--workers", "1", "--runs", "1", "--json", "--compare", "0.05", "0.5"];
    let mut with_floor = args.to_vec();
    with_floor.extend(["--min-ratio", "0.5"]);
    let (code, v, err) = bench(&with_floor);
    assert_eq!(code, 1, "{err}");
    let r = v["ratios"][0]["packets_per_s_ratio"].as_f64().unwrap();
    assert!(r > 0.03 && r < 0.3, "ratio {r}");
    assert_eq!(v["ratios"][0]["pass"], false);
    let mut low_floor = args.to_vec();
    low_floor.extend(["--min-ratio", "0.01"]);
    let (code, v, err) = bench(&low_floor);
    assert_eq!(code, 0, "{err}");
    assert_eq!(v["ratios"][0]["pass"], true);
}

#[test]
fn directory_mode_counts_the_zeek_corpus_and_passes_the_directory() {
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data/pcaps/zeek"));
    if !dir.is_dir() {
        eprintln!("skipping: {} not present", dir.display());
        return;
    }
    let (code, v, err) =
        bench(&["--pcap", dir.to_str().unwrap(), "--cmd", "test -d {pcap}", "--workers", "1", "--runs", "1", "--json"]);
    assert_eq!(code, 0, "{err}");
    let t = &v["inputs"][0]["totals"];
    assert!(t["files"].as_u64().unwrap() > 700, "{t}");
    assert!(t["packets"].as_u64().unwrap() > 10_000, "{t}");
}

#[test]
fn failures_are_reported_not_hidden() {
    let pcap = tmp("fail.pcap");
    gen(&pcap, "256KiB", "3");
    let p = pcap.to_str().unwrap();
    let (code, _, err) = bench(&["--pcap", p, "--cmd", "sh -c 'echo boom >&2; exit 4'", "--runs", "1"]);
    assert_eq!(code, 2);
    assert!(err.contains("exit status 4") && err.contains("boom"), "{err}");
    let (code, _, err) = bench(&["--pcap", "/nonexistent.pcap", "--cmd", "true", "--runs", "1"]);
    assert_eq!(code, 2);
    assert!(err.contains("cannot read capture"), "{err}");
    let (code, _, err) = bench(&["--pcap", p, "--ward", "/nonexistent/ward", "--runs", "1"]);
    assert_eq!(code, 2);
    assert!(err.contains("cannot start"), "{err}");
}
