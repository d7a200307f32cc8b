//! Running a benchmarked child process and measuring it from the outside: wall time (monotonic
//! clock around spawn → reap), CPU time and peak resident set size from `wait4`'s rusage, which
//! reports the child alone. Statistics over runs are median/min/max.
//!
//! The child's stdout and stderr are drained by two threads into bounded tail buffers
//! ([`TAIL_BYTES`]), so a chatty child never blocks on a full pipe and memory stays flat; the
//! tail keeps the last lines, where a sensor prints its exit statistics.

use std::io::Read;
use std::process::{Command, Stdio};
use std::thread;
use std::time::Instant;

/// Bytes of the child's stdout/stderr kept (the end of the output).
pub const TAIL_BYTES: usize = 64 << 10;

/// Errors of running a measured child.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MeasureError {
    /// The program could not be started.
    #[error("cannot start {program}: {source}; check the path (build it with cargo build --release) or pass --ward/--cmd")]
    Spawn { program: String, source: std::io::Error },
    /// `wait4` failed.
    #[error("cannot wait for {program}: {source}")]
    Wait { program: String, source: std::io::Error },
    /// The child exited unsuccessfully.
    #[error("{program} failed ({status}); last output:\n{stderr_tail}")]
    Failed { program: String, status: String, stderr_tail: String },
}

/// One measured run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunSample {
    pub wall_s: f64,
    pub user_s: f64,
    pub sys_s: f64,
    /// Peak resident set size of the child, KiB (Linux `ru_maxrss`).
    pub max_rss_kib: u64,
    #[serde(skip)]
    pub stdout_tail: Vec<u8>,
    #[serde(skip)]
    pub stderr_tail: Vec<u8>,
}

impl RunSample {
    /// The last line of stdout that is a JSON object (a sensor's exit statistics), if any.
    pub fn stdout_json(&self) -> Option<serde_json::Value> {
        let text = String::from_utf8_lossy(&self.stdout_tail);
        text.lines()
            .rev()
            .map(str::trim)
            .filter(|l| l.starts_with('{'))
            .find_map(|l| serde_json::from_str::<serde_json::Value>(l).ok().filter(|v| v.is_object()))
    }
}

/// Keeps the last `cap` bytes written.
struct Tail {
    buf: Vec<u8>,
    cap: usize,
}

impl Tail {
    fn push(&mut self, data: &[u8]) {
        if data.len() >= self.cap {
            self.buf.clear();
            self.buf.extend_from_slice(&data[data.len() - self.cap..]);
            return;
        }
        let over = (self.buf.len() + data.len()).saturating_sub(self.cap);
        if over > 0 {
            self.buf.drain(..over);
        }
        self.buf.extend_from_slice(data);
    }
}

fn drain<R: Read + Send + 'static>(mut r: R) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut tail = Tail { buf: Vec::new(), cap: TAIL_BYTES };
        let mut chunk = vec![0u8; 1 << 16];
        loop {
            match r.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => tail.push(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        tail.buf
    })
}

fn timeval_s(t: libc::timeval) -> f64 {
    t.tv_sec as f64 + t.tv_usec as f64 / 1e6
}

/// Runs `cmd` to completion (stdin closed, stdout/stderr captured as tails) and measures it.
/// A non-zero exit or a signal is an error carrying the end of stderr.
pub fn run_measured(cmd: &mut Command) -> Result<RunSample, MeasureError> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = cmd.spawn().map_err(|source| MeasureError::Spawn { program: program.clone(), source })?;
    let out = child.stdout.take().map(drain);
    let err = child.stderr.take().map(drain);
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain old data; zeroed is a valid value that wait4 overwrites.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: pid is our own un-reaped child; status and usage point to live locals.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == pid {
            break;
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(MeasureError::Wait { program, source: e });
        }
    }
    let wall_s = start.elapsed().as_secs_f64();
    // The child is reaped; `child` must not be waited on again (dropping it does not wait).
    drop(child);
    let stdout_tail = out.and_then(|h| h.join().ok()).unwrap_or_default();
    let stderr_tail = err.and_then(|h| h.join().ok()).unwrap_or_default();
    let ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    if !ok {
        let status = if libc::WIFEXITED(status) {
            format!("exit status {}", libc::WEXITSTATUS(status))
        } else if libc::WIFSIGNALED(status) {
            format!("killed by signal {}", libc::WTERMSIG(status))
        } else {
            format!("wait status {status}")
        };
        let text = String::from_utf8_lossy(&stderr_tail);
        let lines: Vec<&str> = text.lines().collect();
        let stderr_tail = lines[lines.len().saturating_sub(20)..].join("\n");
        return Err(MeasureError::Failed { program, status, stderr_tail });
    }
    Ok(RunSample {
        wall_s,
        user_s: timeval_s(usage.ru_utime),
        sys_s: timeval_s(usage.ru_stime),
        max_rss_kib: usage.ru_maxrss.max(0) as u64,
        stdout_tail,
        stderr_tail,
    })
}

/// Median, minimum and maximum of a set of values.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Spread {
    /// `None` for an empty set. The median of an even count is the mean of the middle two.
    pub fn of(values: &[f64]) -> Option<Spread> {
        if values.is_empty() {
            return None;
        }
        let mut v: Vec<f64> = values.to_vec();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 };
        Some(Spread { median, min: v[0], max: v[n - 1] })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_median_min_max() {
        assert_eq!(Spread::of(&[]), None);
        assert_eq!(Spread::of(&[3.0, 1.0, 2.0]), Some(Spread { median: 2.0, min: 1.0, max: 3.0 }));
        assert_eq!(Spread::of(&[4.0, 1.0, 2.0, 3.0]).unwrap().median, 2.5);
    }

    #[test]
    fn tail_keeps_the_end() {
        let mut t = Tail { buf: Vec::new(), cap: 8 };
        t.push(b"hello ");
        t.push(b"world");
        assert_eq!(t.buf, b"lo world");
        t.push(b"0123456789");
        assert_eq!(t.buf, b"23456789");
    }

    #[test]
    fn wall_time_and_stdout_json_of_a_real_child() {
        let s = run_measured(Command::new("sh").args(["-c", "sleep 0.2; echo noise; echo '{\"packets\": 42}'"])).unwrap();
        assert!(s.wall_s >= 0.2 && s.wall_s < 5.0, "{}", s.wall_s);
        assert_eq!(s.stdout_json().unwrap()["packets"], 42);
        assert!(s.max_rss_kib > 0);
    }

    #[test]
    fn peak_rss_is_the_childs() {
        // dd touches its whole 64 MiB block buffer; our own RSS is far smaller and not counted.
        let s = run_measured(Command::new("dd").args(["if=/dev/zero", "of=/dev/null", "bs=64M", "count=2"])).unwrap();
        assert!(s.max_rss_kib >= 60 << 10, "child peak rss {} KiB", s.max_rss_kib);
        let small = run_measured(&mut Command::new("true")).unwrap();
        assert!(small.max_rss_kib < 32 << 10, "true peak rss {} KiB", small.max_rss_kib);
    }

    #[test]
    fn cpu_time_is_measured() {
        let s = run_measured(Command::new("sh").args(["-c", "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done"])).unwrap();
        assert!(s.user_s + s.sys_s > 0.05, "cpu {} + {}", s.user_s, s.sys_s);
    }

    #[test]
    fn failures_are_errors_with_stderr() {
        let e = run_measured(Command::new("sh").args(["-c", "echo 'no such pcap' >&2; exit 3"])).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("exit status 3") && msg.contains("no such pcap"), "{msg}");
        let e = run_measured(&mut Command::new("/nonexistent/ward")).unwrap_err();
        assert!(matches!(e, MeasureError::Spawn { .. }));
        let e = run_measured(Command::new("sh").args(["-c", "kill -9 $$"])).unwrap_err();
        assert!(e.to_string().contains("signal 9"), "{e}");
    }
}
