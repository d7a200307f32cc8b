//! A hub deployment for benchmarks, made of real processes on loopback: a store (a fresh SQLite
//! directory, or a fresh database on a PostgreSQL server), N `ward hub serve` processes on it,
//! and — with PostgreSQL — HAProxy in front of them, as a state would deploy the hub.
//!
//! * **The store.** `--database sqlite` makes a temporary data directory; `--database
//!   postgres://USER@HOST[:PORT]/DB` names a server and a database to connect to for
//!   administration: the deployment creates `ward_bench_<random>` there and drops it (with
//!   `FORCE`) when it ends, so every deployment starts empty and nothing is left behind.
//! * **Replicas.** Each is `ward hub serve --config hub.toml --listen 127.0.0.1:PORT` with its
//!   output in `replica-N.log` in the deployment's temporary directory (printed when it fails
//!   to start). SQLite allows one replica only (one writer process).
//! * **The load balancer.** HAProxy (`haproxy -db -f haproxy.cfg`, a child process, no system
//!   service) balances round-robin over the replicas with an HTTP health check on `/healthz`
//!   every 500 ms, so a killed replica leaves the rotation within about a second; a request
//!   that cannot connect is sent to another replica (`retries`, `option redispatch`). Requests
//!   that were in flight on a killed replica fail, and the client retries them with the same
//!   idempotency key, as a sensor's forwarder does.
//!
//! Setting up jurisdictions, contacts and enrollment tokens goes through the store itself
//! ([`Deployment::store`], the library's `Store`, before the replicas start); everything a
//! sensor does goes through the HTTP API.

use std::io::Write;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ward_hub::store::Store;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub type Result<T> = std::result::Result<T, BoxError>;

/// Which store a deployment runs on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreKind {
    Sqlite,
    /// An administration URL: the server, a user allowed to create databases, and a database
    /// to connect to for that (e.g. `postgres://root@127.0.0.1:5432/test`).
    Postgres(String),
}

impl StoreKind {
    /// `sqlite`, or a `postgres://` URL.
    pub fn parse(value: &str) -> Result<StoreKind> {
        if value == "sqlite" {
            return Ok(StoreKind::Sqlite);
        }
        if value.starts_with("postgres://") || value.starts_with("postgresql://") {
            value.parse::<postgres::Config>().map_err(|e| format!("invalid postgresql url: {e}"))?;
            return Ok(StoreKind::Postgres(value.to_string()));
        }
        Err(format!("--database takes sqlite or postgres://USER@HOST[:PORT]/DB, not {value:?}").into())
    }

    pub fn label(&self) -> &'static str {
        match self {
            StoreKind::Sqlite => "sqlite",
            StoreKind::Postgres(_) => "postgres",
        }
    }
}

/// The hub configuration of every replica (written to `hub.toml`).
#[derive(Debug, Clone)]
pub struct HubSettings {
    /// K: jurisdictions that open a campaign.
    pub min_jurisdictions: usize,
    /// `[notify] concurrency`.
    pub notify_concurrency: usize,
}

impl Default for HubSettings {
    fn default() -> Self {
        HubSettings { min_jurisdictions: 2, notify_concurrency: 64 }
    }
}

/// One `ward hub serve` process.
pub struct Replica {
    child: Option<Child>,
    pub port: u16,
    pub url: String,
    log: PathBuf,
}

impl Replica {
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
}

/// A store plus (once [`Deployment::serve`] ran) replicas and a load balancer.
pub struct Deployment {
    pub kind: StoreKind,
    /// The value every replica gets as its `database`.
    pub database: String,
    dir: tempfile::TempDir,
    /// The PostgreSQL administration URL and the database this deployment made.
    pg: Option<(String, String)>,
    pub replicas: Vec<Replica>,
    haproxy: Option<Child>,
    /// Where clients connect: HAProxy, or the only replica without one.
    pub url: String,
}

impl Deployment {
    /// Makes a fresh store (an empty directory, or a new database) and applies the schema.
    pub fn create(kind: &StoreKind) -> Result<Deployment> {
        let dir = tempfile::tempdir()?;
        let (database, pg) = match kind {
            StoreKind::Sqlite => {
                let data = dir.path().join("data");
                std::fs::create_dir_all(&data)?;
                (format!("sqlite:{}", data.display()), None)
            }
            StoreKind::Postgres(admin) => {
                let name = format!("ward_bench_{:016x}", rand_u64());
                let mut client = admin_client(admin)?;
                // An identifier cannot be a parameter; the name is ours (prefix and hex digits).
                client.batch_execute(&format!("CREATE DATABASE {name}")).map_err(|e| format!("cannot create database {name}: {e}"))?;
                (db_url(admin, &name)?, Some((admin.clone(), name)))
            }
        };
        let deployment = Deployment { kind: kind.clone(), database, dir, pg, replicas: Vec::new(), haproxy: None, url: String::new() };
        drop(deployment.store()?);
        Ok(deployment)
    }

    /// The store, opened in this process (setup before [`Deployment::serve`]; checks after).
    pub fn store(&self) -> Result<Arc<dyn Store>> {
        Ok(ward_hub::store::open::open(&self.database)?)
    }

    /// The store for provisioning (thousands of one-row transactions before anything is
    /// measured): on PostgreSQL its sessions run with `synchronous_commit = off`, so each
    /// commit does not wait for its own WAL flush (a crash could lose the last moments of the
    /// set-up, never anything the benchmark measures; the replicas use [`Deployment::store`]'s
    /// URL, fully durable). The same store on SQLite.
    pub fn setup_store(&self) -> Result<Arc<dyn Store>> {
        match self.kind {
            StoreKind::Sqlite => self.store(),
            StoreKind::Postgres(_) => {
                let sep = if self.database.contains('?') { '&' } else { '?' };
                Ok(ward_hub::store::open::open(&format!("{}{sep}options=-c%20synchronous_commit%3Doff", self.database))?)
            }
        }
    }

    /// Starts `replicas` `ward hub serve` processes (the binary `ward`) and, with PostgreSQL,
    /// HAProxy in front of them; returns when every replica answers `/healthz`.
    pub fn serve(&mut self, ward: &std::path::Path, replicas: usize, settings: &HubSettings) -> Result<()> {
        if replicas == 0 {
            return Err("--replicas must be at least 1".into());
        }
        if self.kind == StoreKind::Sqlite && replicas > 1 {
            return Err("the SQLite store serves one replica (one writer process); use PostgreSQL for more".into());
        }
        let config = self.dir.path().join("hub.toml");
        std::fs::write(&config, hub_toml(&self.database, &self.dir.path().join("data"), settings))?;
        for n in 0..replicas {
            let port = free_port()?;
            let log = self.dir.path().join(format!("replica-{n}.log"));
            let out = std::fs::File::create(&log)?;
            let child = Command::new(ward)
                .args(["hub", "serve", "--config"])
                .arg(&config)
                .args(["--listen", &format!("127.0.0.1:{port}")])
                .env("RUST_LOG", "warn")
                .env_remove("WARD_HUB_DATABASE")
                .stdin(Stdio::null())
                .stdout(out.try_clone()?)
                .stderr(out)
                .spawn()
                .map_err(|e| format!("cannot start {}: {e} (build it: cargo build -p ward)", ward.display()))?;
            self.replicas.push(Replica { child: Some(child), port, url: format!("http://127.0.0.1:{port}"), log });
        }
        for r in &mut self.replicas {
            wait_healthy(&r.url, Duration::from_secs(90), r.child.as_mut()).map_err(|e| format!("{e}; its log:\n{}", tail(&r.log)))?;
        }
        if self.kind == StoreKind::Sqlite {
            self.url = self.replicas[0].url.clone();
            return Ok(());
        }
        let port = free_port()?;
        let cfg = self.dir.path().join("haproxy.cfg");
        std::fs::write(&cfg, haproxy_cfg(port, &self.replicas.iter().map(|r| r.port).collect::<Vec<_>>()))?;
        let log = self.dir.path().join("haproxy.log");
        let out = std::fs::File::create(&log)?;
        let child = Command::new("haproxy")
            .args(["-db", "-f"])
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .map_err(|e| format!("cannot start haproxy: {e} (scripts/setup-test-env.sh installs it)"))?;
        self.haproxy = Some(child);
        self.url = format!("http://127.0.0.1:{port}");
        wait_healthy(&self.url, Duration::from_secs(20), self.haproxy.as_mut()).map_err(|e| format!("haproxy: {e}; its log:\n{}", tail(&log)))?;
        Ok(())
    }

    /// Kills replica `n` with SIGKILL (no shutdown of any kind) and reaps it.
    pub fn kill(&mut self, n: usize) -> Result<Instant> {
        let r = self.replicas.get_mut(n).ok_or("no such replica")?;
        let mut child = r.child.take().ok_or("replica already stopped")?;
        child.kill()?;
        let at = Instant::now();
        child.wait()?;
        Ok(at)
    }

    /// CPU seconds used so far by the running replicas (together) and by the load balancer.
    pub fn process_cpu(&self) -> (f64, f64) {
        let hubs = self.replicas.iter().filter_map(|r| r.pid()).filter_map(crate::cpu::process_cpu_secs).sum();
        let lb = self.haproxy.as_ref().and_then(|h| crate::cpu::process_cpu_secs(h.id())).unwrap_or(0.0);
        (hubs, lb)
    }

    /// The PostgreSQL database this deployment made (`None` on SQLite).
    pub fn pg_database(&self) -> Option<&str> {
        self.pg.as_ref().map(|(_, name)| name.as_str())
    }

    /// The replicas' log files, for a failure report.
    pub fn logs(&self) -> String {
        self.replicas.iter().enumerate().map(|(n, r)| format!("--- replica {n}:\n{}", tail(&r.log))).collect()
    }
}

impl Drop for Deployment {
    fn drop(&mut self) {
        if let Some(mut h) = self.haproxy.take() {
            let _ = h.kill();
            let _ = h.wait();
        }
        for r in &mut self.replicas {
            if let Some(mut c) = r.child.take() {
                // SIGTERM first, so a replica finishes its deliveries; SIGKILL after 5 s.
                unsafe {
                    libc::kill(c.id() as i32, libc::SIGTERM);
                }
                let deadline = Instant::now() + Duration::from_secs(5);
                while Instant::now() < deadline && matches!(c.try_wait(), Ok(None)) {
                    std::thread::sleep(Duration::from_millis(50));
                }
                let _ = c.kill();
                let _ = c.wait();
            }
        }
        if let Some((admin, name)) = self.pg.take() {
            match admin_client(&admin).and_then(|mut c| Ok(c.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))?)) {
                Ok(()) => {}
                Err(e) => eprintln!("cannot drop benchmark database {name}: {e}"),
            }
        }
    }
}

fn admin_client(admin: &str) -> Result<postgres::Client> {
    let mut config: postgres::Config = admin.parse()?;
    config.connect_timeout(Duration::from_secs(5));
    config.connect(postgres::NoTls).map_err(|e| format!("postgresql does not answer at the --database url: {e}").into())
}

/// The administration URL with its database replaced by `name`.
fn db_url(admin: &str, name: &str) -> Result<String> {
    let (scheme, rest) = admin.split_once("://").ok_or("url without scheme")?;
    let (authority, _) = rest.split_once('/').unwrap_or((rest, ""));
    Ok(format!("{scheme}://{authority}/{name}"))
}

fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0));
    h.write_u32(std::process::id());
    h.finish()
}

/// A port free right now on loopback (the child binds it a moment later).
pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn hub_toml(database: &str, data: &std::path::Path, s: &HubSettings) -> String {
    format!(
        r#"# written by bench-hub
listen = "127.0.0.1:0"
data_dir = {data:?}
database = {database:?}

[correlation]
min_jurisdictions = {k}

[trust]
# Benchmarks send many actors per sensor within an hour (agreement trials); the default budget
# of 1024 new addresses per sensor and hour would put sensors on hold mid-run.
max_new_keys_per_sensor = 100000000

[notify]
concurrency = {c}
# The benchmark's webhook receiver is on loopback, which the egress policy refuses unless listed.
allow_targets = ["127.0.0.1/32"]

[limits]
sensor_batches_per_sec = 1000000.0
user_requests_per_sec = 1000000.0
# HAProxy on loopback forwards the client's address (option forwardfor).
trusted_proxies = ["127.0.0.1"]
"#,
        data = data.display().to_string(),
        k = s.min_jurisdictions,
        c = s.notify_concurrency,
    )
}

/// HAProxy in front of the replicas (HTTP mode, keep-alive, round-robin, health checks).
pub fn haproxy_cfg(port: u16, replicas: &[u16]) -> String {
    let mut cfg = format!(
        r#"# written by bench-hub
global
    maxconn 4096

defaults
    mode http
    option http-keep-alive
    timeout connect 2s
    timeout client 120s
    timeout server 120s
    # A request that cannot connect goes to another replica.
    retries 2
    option redispatch
    # The client's address for the hub's login throttle ([limits] trusted_proxies).
    option forwardfor

frontend ward_hub
    bind 127.0.0.1:{port}
    default_backend replicas

backend replicas
    balance roundrobin
    option httpchk GET /healthz
    http-check expect status 200
    default-server inter 500ms fall 2 rise 2
"#
    );
    for (n, p) in replicas.iter().enumerate() {
        cfg.push_str(&format!("    server replica{n} 127.0.0.1:{p} check\n"));
    }
    cfg
}

/// Polls `GET url/healthz` until it answers 200, the child exits, or the deadline passes.
fn wait_healthy(url: &str, within: Duration, mut child: Option<&mut Child>) -> Result<()> {
    let deadline = Instant::now() + within;
    let health = format!("{url}/healthz");
    loop {
        if let Ok(r) = http_get_status(&health) {
            if r == 200 {
                return Ok(());
            }
        }
        if let Some(c) = child.as_mut() {
            if let Ok(Some(status)) = c.try_wait() {
                return Err(format!("{url} exited ({status}) before answering").into());
            }
        }
        if Instant::now() > deadline {
            return Err(format!("{health} did not answer 200 within {} s", within.as_secs()).into());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A minimal blocking HTTP/1.1 GET on loopback: the status code.
fn http_get_status(url: &str) -> Result<u16> {
    use std::io::Read;
    let rest = url.strip_prefix("http://").ok_or("http only")?;
    let (host, path) = rest.split_once('/').map(|(h, p)| (h, format!("/{p}"))).unwrap_or((rest, "/".into()));
    let mut s = std::net::TcpStream::connect(host)?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")?;
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf)?;
    let head = std::str::from_utf8(&buf[..n]).unwrap_or("");
    Ok(head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0))
}

fn tail(path: &std::path::Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// The `ward` binary next to this one (`target/<profile>/ward`), unless given.
pub fn default_ward() -> PathBuf {
    std::env::current_exe().ok().and_then(|p| p.parent().map(|d| d.join("ward"))).unwrap_or_else(|| PathBuf::from("ward"))
}
