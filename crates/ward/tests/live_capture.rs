//! Live capture for real: two network namespaces joined by a veth pair, an HTTP server and a DNS
//! server in one, curl and dig in the other, and `ward sensor --interface` on the client's end.
//! The EVE output must show the HTTP transaction, the DNS queries and answers, and the flows.
//!
//! Needs root (namespaces, AF_PACKET), `ip`, `curl`, `python3`, `dig` and `dnsmasq`, which
//! `scripts/setup-test-env.sh` installs; without them the test says why and passes vacuously
//! only when not running as root (a developer's unprivileged `cargo test`). Under CI (root) a
//! missing tool fails the test.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

struct Netns {
    names: [String; 2],
}

impl Netns {
    fn create(tag: &str) -> Netns {
        let names = [format!("ward-{tag}-a"), format!("ward-{tag}-b")];
        for n in &names {
            let _ = Command::new("ip").args(["netns", "del", n]).status();
            run(&["ip", "netns", "add", n]);
            run(&["ip", "-n", n, "link", "set", "lo", "up"]);
        }
        let (va, vb) = (format!("wv{tag}a"), format!("wv{tag}b"));
        run(&["ip", "link", "add", &va, "netns", &names[0], "type", "veth", "peer", "name", &vb, "netns", &names[1]]);
        run(&["ip", "-n", &names[0], "addr", "add", "10.231.0.1/24", "dev", &va]);
        run(&["ip", "-n", &names[1], "addr", "add", "10.231.0.2/24", "dev", &vb]);
        run(&["ip", "-n", &names[0], "link", "set", &va, "up"]);
        run(&["ip", "-n", &names[1], "link", "set", &vb, "up"]);
        Netns { names }
    }

    fn exec(&self, side: usize, args: &[&str]) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.names[side]]).args(args);
        cmd
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for n in &self.names {
            let _ = Command::new("ip").args(["netns", "del", n]).status();
        }
    }
}

fn run(args: &[&str]) {
    let status = Command::new(args[0]).args(&args[1..]).status().expect("spawn");
    assert!(status.success(), "{args:?} failed");
}

fn have(tool: &str) -> bool {
    Command::new("sh").args(["-c", &format!("command -v {tool}")]).stdout(Stdio::null()).status().map(|s| s.success()).unwrap_or(false)
}

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn live_capture_between_namespaces_sees_http_dns_and_flows() {
    let root = unsafe { libc_geteuid() } == 0;
    if !root {
        eprintln!("skipped: live capture needs root (network namespaces and AF_PACKET)");
        return;
    }
    for tool in ["ip", "curl", "python3", "dig", "dnsmasq"] {
        assert!(have(tool), "{tool} is missing: run scripts/setup-test-env.sh");
    }
    let ns = Netns::create(&format!("{}", std::process::id() % 10000));
    let dir = tempdir();
    std::fs::write(dir.join("ballot.html"), "<html>sample ballot</html>\n").unwrap();

    let _http = Killed(
        ns.exec(1, &["python3", "-m", "http.server", "8080", "--bind", "10.231.0.2"])
            .current_dir(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let _dns = Killed(
        ns.exec(1, &[
            "dnsmasq", "--no-daemon", "--no-resolv", "--no-hosts", "--listen-address=10.231.0.2",
            "--bind-interfaces", "--address=/results.county.example/10.231.0.2", "--pid-file=",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap(),
    );

    let eve = dir.join("eve.json");
    let ward = PathBuf::from(env!("CARGO_BIN_EXE_ward"));
    let iface = format!("wv{}a", std::process::id() % 10000);
    let sensor = ns
        .exec(0, &[ward.to_str().unwrap(), "sensor", "--interface", &iface, "--workers", "2", "--quiet", "--eve", eve.to_str().unwrap()])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut sensor = Killed(sensor);
    std::thread::sleep(Duration::from_millis(700));

    // Wait for the server, then make the traffic.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ok = ns.exec(0, &["curl", "-s", "-o", "/dev/null", "-H", "Host: results.county.example", "http://10.231.0.2:8080/ballot.html"]).status().unwrap().success();
        if ok || Instant::now() > deadline {
            assert!(ok, "curl to the namespace's HTTP server failed");
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    for _ in 0..3 {
        let out = ns.exec(0, &["dig", "+short", "+tries=1", "+time=2", "@10.231.0.2", "results.county.example", "A"]).output().unwrap();
        assert!(String::from_utf8_lossy(&out.stdout).contains("10.231.0.2"), "dnsmasq did not answer");
    }
    std::thread::sleep(Duration::from_millis(800));

    // Ctrl-C: the sensor logs open flows and stats, then exits 0.
    unsafe { libc_kill(sensor.0.id() as i32, 2) };
    let status = wait_timeout(&mut sensor.0, Duration::from_secs(10));
    assert!(status, "sensor did not exit after SIGINT");

    let text = std::fs::read_to_string(&eve).expect("eve file written");
    let records: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).expect("json line")).collect();
    let http: Vec<&Value> = records.iter().filter(|r| r["event_type"] == "http").collect();
    assert!(
        http.iter().any(|r| r["http"]["url"] == "/ballot.html" && r["http"]["hostname"] == "results.county.example" && r["http"]["status"] == 200),
        "no http record for the curl request in {text}"
    );
    let dns_queries = records
        .iter()
        .filter(|r| r["event_type"] == "dns" && r["dns"]["type"] == "request")
        .filter(|r| r["dns"]["queries"][0]["rrname"] == "results.county.example")
        .count();
    assert!(dns_queries >= 3, "expected 3 dns requests, saw {dns_queries}");
    assert!(
        records.iter().any(|r| r["event_type"] == "dns" && r["dns"]["type"] == "response"
            && r["dns"]["answers"].as_array().is_some_and(|a| a.iter().any(|x| x["rdata"] == "10.231.0.2"))),
        "no dns response with the answer"
    );
    assert!(
        records.iter().any(|r| r["event_type"] == "flow" && r["proto"] == "TCP" && r["dest_port"] == 8080 && r["app_proto"] == "http"),
        "no http flow record"
    );
    assert!(records.iter().any(|r| r["event_type"] == "stats"), "no stats record");
}

fn wait_timeout(child: &mut Child, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return status.success();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

fn tempdir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ward-live-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}
