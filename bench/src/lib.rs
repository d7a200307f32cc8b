//! ward-bench: the benchmark harnesses of ward and the synthetic data they run on.
//!
//! - [`mix`] and [`pcap`]: the traffic generator and pcap writing/counting, re-exported from
//!   `ward-sim` (which `ward demo` and `ward drill` use too; the product never depends on this
//!   crate). `gen-pcap` is the generator's command line.
//! - [`measure`]: running a child process and measuring its wall time, CPU time and peak RSS
//!   (`wait4` rusage), and the median/min/max statistics over runs (`bench-sensor` binary).
//! - [`size`]: human byte sizes (`1GiB`, `500MB`).
//! - [`hub_deploy`]: a hub deployment of real processes for `bench-hub`: a fresh store (SQLite
//!   or a new PostgreSQL database), N `ward hub serve` replicas and HAProxy in front.
//! - [`hub_scale`]: `bench-hub`'s national-load, replica-agreement and failover scenarios.
//! - [`cpu`]: CPU seconds of processes and threads, and of one PostgreSQL database's backends,
//!   for throughput per CPU-second on a shared machine.

pub use ward_sim::{mix, pcap};
pub mod size;
pub mod measure;
pub mod sensor_bench;
pub mod hub_deploy;
pub mod hub_scale;
pub mod cpu;
