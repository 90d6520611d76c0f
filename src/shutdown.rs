//! The one shutdown path: a future that completes on SIGTERM or SIGINT.

use std::future::Future;

use tracing::info;

/// Completes when the process receives SIGTERM or SIGINT (or if signal handlers can't be
/// installed, which only happens when the runtime is unusable, so shutting down is right).
///
/// The handlers are installed when this is called, not when the future is first polled: the
/// listeners answer before the server gets round to awaiting shutdown, and a SIGTERM in that
/// gap (a rolling update just after start) would otherwise kill the process uncleanly. Call
/// it inside the runtime.
pub fn signal() -> impl Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    let handlers = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    );
    async move {
        let (Ok(mut term), Ok(mut int)) = handlers else {
            return;
        };
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        info!(signal = name, "Shutting down");
    }
}
