//! The HTTP server: hyper's HTTP/1.1 connection handling, over TLS when the web configuration
//! asks for it, with header-read and handshake timeouts (the header-read timeout also closes
//! keep-alive connections idle that long), caps on open connections and on requests in
//! flight, basic authentication, and a graceful drain when the shutdown future completes.
//! Request bodies are never read: a response is written as soon as the headers are in, and
//! hyper closes a connection whose body was not consumed, so a slow body can't hold resources
//! either.
//!
//! - [`routes`]: what each path answers; [`landing`]: the page at `/`.
//! - [`webconfig`]: the `--web.config.file` format; [`tls`], [`auth`], [`ratelimit`]: what it
//!   configures; [`security`]: one loaded configuration and the [`Guard`] enforcing it;
//!   [`reload`]: SIGHUP and file-change reloads, which [`protection`] keeps from lowering it.

pub mod auth;
pub mod landing;
pub mod protection;
pub mod ratelimit;
pub mod reload;
mod routes;
pub mod security;
pub mod tls;
pub mod webconfig;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::Request;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::{debug, warn};

pub use routes::{App, Reply};
pub use security::{Guard, Security};

/// A client must send its request headers within this time, and a keep-alive connection is
/// closed after this long without a new request (slowloris protection); a TLS handshake must
/// finish within it too.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long in-flight requests get to finish after shutdown begins.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `app` on every listener, with at most `max_connections` open at once, as `guard`
/// says (TLS, authentication, headers), until `shutdown` completes; then stops accepting, lets
/// in-flight requests finish (up to [`DRAIN_TIMEOUT`]) and returns.
pub async fn serve(
    listeners: Vec<TcpListener>,
    app: Arc<App>,
    guard: Arc<Guard>,
    max_connections: usize,
    shutdown: impl Future<Output = ()>,
) {
    let graceful = Arc::new(GracefulShutdown::new());
    let connections = Arc::new(Semaphore::new(max_connections));
    let mut acceptors = tokio::task::JoinSet::new();
    for listener in listeners {
        acceptors.spawn(accept_loop(
            listener,
            Arc::clone(&app),
            Arc::clone(&guard),
            Arc::clone(&graceful),
            Arc::clone(&connections),
        ));
    }
    shutdown.await;
    acceptors.abort_all();
    while acceptors.join_next().await.is_some() {}
    // Connections hold watchers, not the Arc: with the acceptors gone it is ours alone.
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
    guard: Arc<Guard>,
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
        let (app, guard, graceful) = (Arc::clone(&app), Arc::clone(&guard), graceful.watcher());
        // The configuration in force when the connection arrives decides TLS for its lifetime.
        let tls = guard.current().tls.clone();
        tokio::spawn(async move {
            let result = match tls {
                None => serve_connection(stream, app, guard, graceful).await,
                Some(acceptor) => {
                    match tokio::time::timeout(HEADER_READ_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls_stream)) => {
                            serve_connection(tls_stream, app, guard, graceful).await
                        }
                        Ok(Err(err)) => {
                            debug!(%peer, error = %err, "TLS handshake failed");
                            Ok(())
                        }
                        Err(_) => {
                            debug!(%peer, "TLS handshake timed out");
                            Ok(())
                        }
                    }
                }
            };
            if let Err(err) = result {
                debug!(%peer, error = %err, "Connection ended with an error");
            }
            drop(slot);
        });
    }
}

async fn serve_connection<S>(
    stream: S,
    app: Arc<App>,
    guard: Arc<Guard>,
    graceful: Watcher,
) -> Result<(), hyper::Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req| {
        let (app, guard) = (Arc::clone(&app), Arc::clone(&guard));
        async move { Ok::<_, std::convert::Infallible>(respond(&app, &guard, req).await) }
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .serve_connection(TokioIo::new(stream), service);
    graceful.watch(conn).await
}

/// The web configuration's rate limit and authentication, then admission (request cap), then
/// the route; the configured headers go on every answer, refusals included. Authentication
/// comes first so that requests waiting for a password check hold no request slot: a flood of
/// wrong passwords can't use up the slots that good scrapes need.
async fn respond(app: &App, guard: &Guard, req: Request<Incoming>) -> Reply {
    let security = guard.current();
    let mut reply = match guard.screen(&security, req.headers()).await {
        Some(refused) => refused,
        None => match app.admit() {
            None => App::busy(),
            Some(_permit) => app.route(&req),
        },
    };
    security.add_headers(&mut reply);
    reply
}
