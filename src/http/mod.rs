//! The HTTP server: hyper's HTTP/1.1 connection handling with a header-read timeout (which also
//! closes keep-alive connections idle that long), caps on open connections and on requests in
//! flight, and a graceful drain when the shutdown future completes. Request bodies are never
//! read: a response is written as soon as the headers are in, and hyper closes a connection
//! whose body was not consumed, so a slow body can't hold resources either.

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
use tokio::sync::Semaphore;
use tracing::{debug, warn};

pub use routes::App;

/// A client must send its request headers within this time, and a keep-alive connection is
/// closed after this long without a new request (slowloris protection).
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long in-flight requests get to finish after shutdown begins.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `app` on every listener, with at most `max_connections` open at once, until
/// `shutdown` completes; then stops accepting, lets in-flight requests finish (up to
/// [`DRAIN_TIMEOUT`]) and returns.
pub async fn serve(
    listeners: Vec<TcpListener>,
    app: Arc<App>,
    max_connections: usize,
    shutdown: impl Future<Output = ()>,
) {
    let graceful = Arc::new(GracefulShutdown::new());
    let connections = Arc::new(Semaphore::new(max_connections));
    let mut acceptors = tokio::task::JoinSet::new();
    for listener in listeners {
        let (app, graceful, connections) = (
            Arc::clone(&app),
            Arc::clone(&graceful),
            Arc::clone(&connections),
        );
        acceptors.spawn(accept_loop(listener, app, graceful, connections));
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

async fn accept_loop(
    listener: TcpListener,
    app: Arc<App>,
    graceful: Arc<GracefulShutdown>,
    connections: Arc<Semaphore>,
) {
    loop {
        // At the cap, stop accepting until a connection closes; the kernel's backlog holds the
        // rest (and refuses beyond it), so memory stays bounded.
        let Ok(slot) = Arc::clone(&connections).acquire_owned().await else {
            return;
        };
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
            drop(slot);
        });
    }
}
