//! CPU time spent by the processes a benchmark drives, read from `/proc` (Linux), so a
//! throughput figure can also be given per CPU-second: on a machine shared with other work the
//! events per wall-clock second say how busy the machine was as much as how fast the code is,
//! while the events per CPU-second of the hub and of PostgreSQL do not.
//!
//! PostgreSQL's work for one database is done by its backends (one process per connection,
//! titled `postgres: USER DATABASE HOST(PORT) STATE`) plus the server-wide WAL writer,
//! checkpointer and background writer; [`PgCpu`] sums the backends of one database and those
//! three (which other databases of the same server also use: their share is an upper bound).

use std::collections::HashMap;

/// Clock ticks per second of `/proc/*/stat` times.
fn ticks_per_sec() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// User + system CPU seconds of process `pid` (all its threads); `None` once it is gone.
pub fn process_cpu_secs(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: fields after its ")".
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3, utime field 14, stime field 15 (1-based).
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / ticks_per_sec())
}

/// CPU seconds of the calling thread (`CLOCK_THREAD_CPUTIME_ID`).
pub fn thread_cpu_secs() -> f64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: ts is a valid timespec the call writes.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return 0.0;
    }
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

/// The `postgres` processes' titles, by pid.
fn postgres_processes() -> HashMap<u32, String> {
    let mut out = HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else { return out };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else { continue };
        let title = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if title.starts_with("postgres: ") {
            out.insert(pid, title.trim().to_string());
        }
    }
    out
}

/// A snapshot of PostgreSQL's CPU time for one database; [`PgCpu::since`] gives the seconds
/// spent between two snapshots.
#[derive(Debug, Clone, Default)]
pub struct PgCpu {
    backends: HashMap<u32, f64>,
    background: HashMap<u32, f64>,
}

/// CPU seconds PostgreSQL spent between two snapshots.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PgCpuUsed {
    /// The backends connected to the database.
    pub backends: f64,
    /// WAL writer, checkpointer and background writer (shared by every database of the server).
    pub background: f64,
}

impl PgCpuUsed {
    pub fn total(&self) -> f64 {
        self.backends + self.background
    }
}

impl PgCpu {
    /// Reads the CPU times of `database`'s backends and the server's background writers now.
    pub fn snapshot(database: &str) -> PgCpu {
        let mut snap = PgCpu::default();
        let needle = format!(" {database} ");
        for (pid, title) in postgres_processes() {
            let Some(cpu) = process_cpu_secs(pid) else { continue };
            if title.contains(&needle) {
                snap.backends.insert(pid, cpu);
            } else if title.contains("walwriter") || title.contains("checkpointer") || title.contains("background writer") {
                snap.background.insert(pid, cpu);
            }
        }
        snap
    }

    /// Seconds spent since `earlier` (a backend that started since counts whole; one that
    /// ended since is lost, so keep connections open across the measurement).
    pub fn since(&self, earlier: &PgCpu) -> PgCpuUsed {
        let delta = |now: &HashMap<u32, f64>, then: &HashMap<u32, f64>| -> f64 {
            now.iter().map(|(pid, cpu)| (cpu - then.get(pid).copied().unwrap_or(0.0)).max(0.0)).sum()
        };
        PgCpuUsed { backends: delta(&self.backends, &earlier.backends), background: delta(&self.background, &earlier.background) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_and_thread_use_cpu() {
        let before = process_cpu_secs(std::process::id()).expect("own /proc entry");
        let t0 = thread_cpu_secs();
        let mut x = 0u64;
        for i in 0..30_000_000u64 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(i);
        }
        assert!(x != 1);
        assert!(thread_cpu_secs() > t0, "the thread's clock advanced");
        assert!(process_cpu_secs(std::process::id()).unwrap() >= before);
        assert!(process_cpu_secs(u32::MAX).is_none(), "no such process");
    }
}
