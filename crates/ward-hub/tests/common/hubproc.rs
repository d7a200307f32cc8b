//! Hub replicas as real processes, for tests of several replicas on one PostgreSQL database.
//!
//! The `ward` binary lives in another crate, so a replica is this test binary run again: the
//! parent starts `current_exe() --exact ENTRY --ignored --nocapture` with the database URL and
//! a TOML configuration in the environment; the entry (an ignored test that calls
//! [`serve_replica_from_env`]) starts the hub exactly as `ward hub serve` does
//! (`ward_hub::start`: its own store pool, change listener, workers, HTTP server on a loopback
//! port), prints its URL and serves until it is killed. [`HubProc::kill`] sends SIGKILL: the
//! process dies mid-whatever, with no shutdown code run.
#![allow(dead_code)]

use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The database URL a child replica serves.
pub const DATABASE_ENV: &str = "WARD_TEST_REPLICA_DATABASE";
/// The child's configuration (TOML, as in `ward hub serve --config`).
pub const CONFIG_ENV: &str = "WARD_TEST_REPLICA_CONFIG";
/// The line a child prints once it listens, followed by its URL.
const READY: &str = "WARD_TEST_REPLICA_LISTENING ";

/// A running replica process.
pub struct HubProc {
    child: Child,
    pub url: String,
}

impl HubProc {
    /// Starts a replica of `database_url` through the ignored test `entry` of this binary, with
    /// `config` (TOML; `listen` and `database` are set by the child). Waits until it listens.
    pub fn spawn(entry: &str, database_url: &str, config: &str) -> HubProc {
        let exe = std::env::current_exe().expect("the test binary's path");
        let mut child = Command::new(exe)
            .args(["--exact", entry, "--ignored", "--nocapture", "--test-threads=1"])
            .env(DATABASE_ENV, database_url)
            .env(CONFIG_ENV, config)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("cannot start a replica process");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        // Reads the URL, then keeps draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // libtest prints "test NAME ... " on the same line before the entry runs.
                if let Some(at) = line.find(READY) {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(line[at + READY.len()..].trim().to_string());
                    }
                }
            }
        });
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(url) => HubProc { child, url },
            Err(_) => {
                let _ = child.kill();
                let status = child.wait();
                panic!("replica process did not start listening within 60 s (exit: {status:?})");
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, then reap.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for HubProc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The body of a replica entry point: when this process was started by [`HubProc::spawn`],
/// serves the hub until killed (never returns); otherwise returns at once.
pub fn serve_replica_from_env() {
    let Some(database) = std::env::var_os(DATABASE_ENV) else { return };
    let database = database.into_string().expect("database URL is UTF-8");
    let text = std::env::var(CONFIG_ENV).unwrap_or_default();
    let mut config: ward_hub::HubConfig = toml::from_str(&text).unwrap_or_else(|e| panic!("bad replica config: {e}\n{text}"));
    config.database = Some(database);
    config.listen = "127.0.0.1:0".parse().unwrap();
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).with_writer(std::io::stderr).try_init();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async move {
        let hub = ward_hub::start(config).await.unwrap_or_else(|e| panic!("replica cannot start: {e:#}"));
        println!("{READY}{}", hub.url());
        let _ = hub.wait().await;
    });
    std::process::exit(0);
}
