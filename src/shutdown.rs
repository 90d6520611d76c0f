//! The one shutdown path: a future that completes on SIGTERM or SIGINT.

use tracing::info;

/// Completes when the process receives SIGTERM or SIGINT (or if signal handlers can't be
/// installed, which only happens when the runtime is unusable, so shutting down is right).
pub async fn signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return;
    };
    let name = tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    };
    info!(signal = name, "Shutting down");
}
