//! The HTTP server: hyper's HTTP/1.1 connection handling with a header-read timeout, a cap on
//! requests in flight, and a graceful drain when the shutdown future completes.

pub mod landing;
mod routes;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tracing::{debug, warn};

pub use routes::App;

/// A client must send its request headers within this time (slowloris protection).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long in-flight requests get to finish after shutdown begins.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `app` on every listener until `shutdown` completes, then stops accepting, lets
/// in-flight requests finish (up to [`DRAIN_TIMEOUT`]) and returns.
pub async fn serve(listeners: Vec<TcpListener>, app: Arc<App>, shutdown: impl Future<Output = ()>) {
    let graceful = Arc::new(GracefulShutdown::new());
    let mut acceptors = tokio::task::JoinSet::new();
    for listener in listeners {
        acceptors.spawn(accept_loop(
            listener,
            Arc::clone(&app),
            Arc::clone(&graceful),
        ));
    }
    shutdown.await;
    acceptors.abort_all();
    while acceptors.join_next().await.is_some() {}
    let Ok(graceful) = Arc::try_unwrap(graceful) else {
        warn!("Connections still being set up at shutdown; not draining");
        return;
    };
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        warn!(timeout = ?DRAIN_TIMEOUT, "Connections did not drain in time; closing them");
    }
}

async fn accept_loop(listener: TcpListener, app: Arc<App>, graceful: Arc<GracefulShutdown>) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(conn) => conn,
            Err(err) => {
                // Out of file descriptors and the like: back off instead of spinning.
                warn!(error = %err, "Accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let app = Arc::clone(&app);
        let service = service_fn(move |req| {
            let response = app.handle(&req);
            async move { Ok::<_, std::convert::Infallible>(response) }
        });
        let conn = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(HEADER_READ_TIMEOUT)
            .serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(err) = conn.await {
                debug!(%peer, error = %err, "Connection ended with an error");
            }
        });
    }
}
