//! The sensor process's signals, handled in one place.
//!
//! | signal | effect |
//! |---|---|
//! | SIGINT, SIGTERM | clean stop: the stop flag is set; the reader stops reading, every worker logs its open flows, the stats record is written, the spool and EVE output are flushed, and the run ends with exit status 0. A second one exits at once with status 130. |
//! | SIGHUP | reload rules and indicators ([`crate::detect::request_reload`]); the run goes on (a pcap run still reads the whole capture). |
//! | SIGUSR1 | forced reload ([`crate::detect::request_forced_reload`]): as SIGHUP, but a new rule set is accepted however many rules it lost. |
//!
//! One thread waits for the signals with tokio's `signal::unix` (a self-pipe behind an
//! async-signal-safe handler, through `signal-hook-registry`) on a small runtime of its own, and
//! does the work outside signal context. Nothing else in the process installs a handler for
//! these signals: before, the `ctrlc` crate's termination handler and a hand-written SIGHUP
//! handler both claimed SIGHUP, and the later one won, so SIGHUP stopped the sensor.
//!
//! [`install`] returns only once every handler is in place, so a caller that announces
//! readiness afterwards never has a signal take its default action (SIGHUP's is to terminate).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::signal::unix::{signal, SignalKind};

/// Exit status after a second stop signal: 128 + SIGINT, as a shell reports an interrupted
/// command.
pub const FORCED_EXIT_STATUS: i32 = 130;

/// Installs the handlers and starts the thread that acts on them; `stop` is set on the first
/// SIGINT or SIGTERM. The handlers stay for the life of the process.
pub fn install(stop: Arc<AtomicBool>) -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_io().build()?;
    let (mut interrupt, mut terminate, mut hangup, mut user1) = {
        let _entered = runtime.enter();
        (
            signal(SignalKind::interrupt())?,
            signal(SignalKind::terminate())?,
            signal(SignalKind::hangup())?,
            signal(SignalKind::user_defined1())?,
        )
    };
    std::thread::Builder::new().name("ward-signals".into()).spawn(move || {
        runtime.block_on(async move {
            loop {
                tokio::select! {
                    Some(()) = interrupt.recv() => on_stop(&stop, "SIGINT"),
                    Some(()) = terminate.recv() => on_stop(&stop, "SIGTERM"),
                    Some(()) = hangup.recv() => {
                        tracing::info!(signal = "SIGHUP", "reloading rules and indicators");
                        crate::detect::request_reload();
                    }
                    Some(()) = user1.recv() => {
                        tracing::info!(signal = "SIGUSR1", "reloading rules and indicators, accepting any rule loss");
                        crate::detect::request_forced_reload();
                    }
                    else => break,
                }
            }
        });
    })?;
    Ok(())
}

fn on_stop(stop: &AtomicBool, name: &str) {
    if stop.swap(true, Ordering::SeqCst) {
        eprintln!("ward: second stop signal ({name}): exiting without finishing");
        std::process::exit(FORCED_EXIT_STATUS);
    }
    tracing::info!(signal = name, "stopping: finishing the packets read, logging open flows");
}
