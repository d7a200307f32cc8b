//! What the sensor process tests share: the real `ward` binary run as a child whose stderr is
//! followed line by line, real signals, captures fed through a named pipe (so a test decides
//! when the rest of a capture arrives, and a signal lands mid-run for certain), and a pair of
//! network namespaces joined by a veth pair for live capture.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const WARD: &str = env!("CARGO_BIN_EXE_ward");

pub const SIGHUP: i32 = 1;
pub const SIGINT: i32 = 2;
pub const SIGUSR1: i32 = 10;
pub const SIGTERM: i32 = 15;

/// How long a test waits for the sensor to say something or to exit: generous, as the tests
/// share a busy machine; a healthy run takes a fraction of it.
pub const PATIENCE: Duration = Duration::from_secs(60);

extern "C" {
    fn geteuid() -> u32;
    fn kill(pid: i32, sig: i32) -> i32;
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { geteuid() == 0 }
}

pub fn shared(p: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data").join(p)
}

/// A running `ward` process; killed if the test ends first.
pub struct Ward {
    child: Child,
    stderr: Arc<Mutex<String>>,
}

impl Ward {
    /// Starts `cmd` (its stderr is captured; stdout is discarded).
    pub fn spawn(mut cmd: Command) -> Ward {
        let mut child = cmd.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("start ward");
        let stderr = Arc::new(Mutex::new(String::new()));
        let pipe = child.stderr.take().expect("stderr piped");
        let sink = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        Ward { child, stderr }
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits until stderr holds `needle` at least `times` times; panics (with stderr) if the
    /// process exits first or [`PATIENCE`] runs out.
    pub fn wait_for(&mut self, needle: &str, times: usize) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if self.stderr().matches(needle).count() >= times {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                std::thread::sleep(Duration::from_millis(200)); // let the reader take the last lines
                if self.stderr().matches(needle).count() >= times {
                    return;
                }
                panic!("ward exited ({status}) before printing {needle:?} {times} times; stderr:\n{}", self.stderr());
            }
            assert!(Instant::now() < deadline, "no {needle:?} ({times} times) on stderr; stderr:\n{}", self.stderr());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on our own child's pid.
        let rc = unsafe { kill(self.child.id() as i32, sig) };
        assert_eq!(rc, 0, "kill({}, {sig}) failed", self.child.id());
    }

    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits for the exit; panics after [`PATIENCE`].
    pub fn wait(&mut self) -> ExitStatus {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                std::thread::sleep(Duration::from_millis(200)); // let the reader take the last lines
                return status;
            }
            assert!(Instant::now() < deadline, "ward did not exit; stderr:\n{}", self.stderr());
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Ward {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every record of an EVE file; each line must be a whole JSON object (the output was flushed).
pub fn eve_records(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    text.lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("not a whole EVE line ({e}): {l}")))
        .collect()
}

/// The records of a run as sorted lines, without what differs between two runs of the same
/// capture (the `stats` record's wall-clock fields, the `engine` records of reloads).
pub fn comparable(records: &[Value]) -> Vec<String> {
    let mut lines: Vec<String> =
        records.iter().filter(|r| r["event_type"] != "stats" && r["event_type"] != "engine").map(|r| r.to_string()).collect();
    lines.sort();
    lines
}

pub fn alerts_of(records: &[Value], sid: u64) -> usize {
    records.iter().filter(|r| r["event_type"] == "alert" && r["alert"]["signature_id"] == sid).count()
}

pub fn engine_records(records: &[Value]) -> Vec<&Value> {
    records.iter().filter(|r| r["event_type"] == "engine").collect()
}

/// A classic pcap file split into its header and records, to be fed in pieces.
pub struct Pcap {
    pub header: Vec<u8>,
    pub records: Vec<Vec<u8>>,
}

impl Pcap {
    /// Reads a little-endian microsecond pcap (as tcpdump writes on x86).
    pub fn read(path: &Path) -> Pcap {
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        assert_eq!(&bytes[..4], &[0xd4, 0xc3, 0xb2, 0xa1], "{} is not a little-endian pcap", path.display());
        let mut records = Vec::new();
        let mut at = 24;
        while at + 16 <= bytes.len() {
            let caplen = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
            records.push(bytes[at..at + 16 + caplen].to_vec());
            at += 16 + caplen;
        }
        Pcap { header: bytes[..24].to_vec(), records }
    }

    /// Records `from..to` as one byte string.
    pub fn slice(&self, from: usize, to: usize) -> Vec<u8> {
        self.records[from..to].concat()
    }

    /// The records cut into `n` pieces of about equal size, in order.
    pub fn chunks(&self, n: usize) -> Vec<Vec<u8>> {
        let len = self.records.len();
        (0..n).map(|i| self.slice(len * i / n, len * (i + 1) / n)).collect()
    }
}

/// A named pipe the sensor reads as its `--pcap`: the test writes the capture into it piece by
/// piece, and the capture ends only when the feeder is closed.
pub struct PipeFeeder {
    pub path: PathBuf,
    tx: Option<mpsc::Sender<Vec<u8>>>,
    writer: Option<std::thread::JoinHandle<()>>,
}

impl PipeFeeder {
    pub fn create(dir: &Path, name: &str) -> PipeFeeder {
        let path = dir.join(name);
        let status = Command::new("mkfifo").arg(&path).status().expect("mkfifo");
        assert!(status.success(), "mkfifo {} failed", path.display());
        let (tx, rx) = mpsc::channel::<Vec<u8>>();
        let target = path.clone();
        // Opening a pipe for writing waits for its reader: done on the writer thread.
        let writer = std::thread::spawn(move || {
            let Ok(mut pipe) = std::fs::OpenOptions::new().write(true).open(&target) else { return };
            for piece in rx {
                if pipe.write_all(&piece).is_err() {
                    return; // the sensor stopped reading
                }
            }
        });
        PipeFeeder { path, tx: Some(tx), writer: Some(writer) }
    }

    pub fn feed(&self, bytes: Vec<u8>) {
        self.tx.as_ref().expect("feeder open").send(bytes).expect("pipe writer alive");
    }

    /// Ends the capture (end of file for the sensor) once everything fed is written.
    pub fn close(&mut self) {
        self.tx.take();
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
    }
}

impl Drop for PipeFeeder {
    fn drop(&mut self) {
        use std::os::unix::fs::OpenOptionsExt;
        const O_NONBLOCK: i32 = 0o4000;
        self.tx.take();
        // A writer still waiting for its reader would wait forever: open the read end once.
        // A writer stuck on a full pipe ends when the sensor (killed by its guard) goes away;
        // it is not joined here, so a failing test never hangs on it.
        if self.writer.as_ref().is_some_and(|w| !w.is_finished()) {
            let _ = std::fs::OpenOptions::new().read(true).custom_flags(O_NONBLOCK).open(&self.path);
        }
    }
}

/// Two network namespaces joined by a veth pair: `10.231.0.1` on side 0, `10.231.0.2` on
/// side 1. Deleted when dropped.
pub struct Netns {
    pub names: [String; 2],
    pub ifaces: [String; 2],
}

impl Netns {
    /// `tag`: two letters that keep this test's namespaces and interfaces apart from others'.
    pub fn create(tag: &str) -> Netns {
        let id = std::process::id() % 10000;
        let names = [format!("ward-{tag}{id}-a"), format!("ward-{tag}{id}-b")];
        let ifaces = [format!("w{tag}{id}a"), format!("w{tag}{id}b")];
        for n in &names {
            // Left over from an earlier run that was killed: usually there is none.
            let _ = Command::new("ip").args(["netns", "del", n]).stderr(Stdio::null()).status();
            run(&["ip", "netns", "add", n]);
            run(&["ip", "-n", n, "link", "set", "lo", "up"]);
        }
        run(&["ip", "link", "add", &ifaces[0], "netns", &names[0], "type", "veth", "peer", "name", &ifaces[1], "netns", &names[1]]);
        run(&["ip", "-n", &names[0], "addr", "add", "10.231.0.1/24", "dev", &ifaces[0]]);
        run(&["ip", "-n", &names[1], "addr", "add", "10.231.0.2/24", "dev", &ifaces[1]]);
        run(&["ip", "-n", &names[0], "link", "set", &ifaces[0], "up"]);
        run(&["ip", "-n", &names[1], "link", "set", &ifaces[1], "up"]);
        Netns { names, ifaces }
    }

    /// A command run inside namespace `side`.
    pub fn exec(&self, side: usize, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.names[side], program]);
        cmd
    }

    /// Runs a Python snippet inside namespace `side` and waits for it.
    pub fn python(&self, side: usize, script: &str, args: &[&str]) {
        let out = self.exec(side, "python3").arg("-c").arg(script).args(args).output().expect("python3");
        assert!(out.status.success(), "python in {} failed: {}", self.names[side], String::from_utf8_lossy(&out.stderr));
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

/// Sends `count` UDP datagrams carrying `payload` from side 1 to side 0 (port 9999), 20 ms apart.
pub const UDP_SENDER: &str = "import socket, sys, time\n\
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
for _ in range(int(sys.argv[2])):\n    s.sendto(sys.argv[1].encode(), ('10.231.0.1', 9999))\n    time.sleep(0.02)\n";
