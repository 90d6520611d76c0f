//! The HTTP server: hyper's HTTP/1.1 connection handling, over TLS when the web configuration
//! asks for it, with header-read and handshake timeouts (the header-read timeout also closes
//! keep-alive connections idle that long), a cap on open connections that closes idle ones
//! first, a cap on requests in flight, the web configuration's screening (rate limit, basic
//! authentication, see [`crate::webconfig`]), and a bounded drain when the
//! shutdown future completes. Request bodies are never read: a response is written as soon as
//! the headers are in, and hyper closes a connection whose body was not consumed, so a slow
//! body can't hold resources either.
//!
//! - `routes`: what each path answers; [`landing`]: the page at `/`.
//! - [`connections`]: the connection cap, idle connections, shutdown; `connection`: one
//!   connection's life; [`plain_to_tls`]: plain HTTP sent to a TLS port.
//!
//! What `--web.config.file` asks for (TLS, users, headers, rate limit, reloads) is
//! [`crate::webconfig`]'s: the server holds its [`Guard`] and asks it.

mod connection;
pub mod connections;
pub mod landing;
pub mod plain_to_tls;
mod routes;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::Request;
use tokio::net::TcpListener;
use tracing::warn;

use crate::webconfig::Guard;
use connections::Connections;
pub use routes::{App, Reply};

/// A client must send its request headers within this time, and a keep-alive connection is
/// closed after this long without a new request (slowloris protection); a TLS handshake must
/// finish within it too.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long requests in flight get to finish after shutdown begins; idle connections are
/// closed at once. Rendering takes milliseconds, so this only cuts off very slow readers and
/// password checks queued behind a flood.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(1);

/// Serves `app` on every listener, with at most `max_connections` open at once (idle ones
/// closed first to make room), as `guard` says (TLS, authentication, headers), until
/// `shutdown` completes; then stops accepting, closes idle connections, lets requests in
/// flight finish (up to [`DRAIN_TIMEOUT`]) and returns.
pub async fn serve(
    listeners: Vec<TcpListener>,
    app: Arc<App>,
    guard: Arc<Guard>,
    max_connections: usize,
    shutdown: impl Future<Output = ()>,
) {
    let connections = Connections::new(max_connections);
    let mut acceptors = tokio::task::JoinSet::new();
    for listener in listeners {
        acceptors.spawn(accept_loop(
            listener,
            Arc::clone(&app),
            Arc::clone(&guard),
            Arc::clone(&connections),
        ));
    }
    shutdown.await;
    acceptors.abort_all();
    while acceptors.join_next().await.is_some() {}
    connections.drain(DRAIN_TIMEOUT).await;
}

async fn accept_loop(
    listener: TcpListener,
    app: Arc<App>,
    guard: Arc<Guard>,
    connections: Arc<Connections>,
) {
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
        // At the cap this closes the longest-idle connection, or waits while all are busy
        // (the kernel's backlog holds the next clients meanwhile, so memory stays bounded).
        let slot = connections.admit().await;
        // The configuration in force when the connection arrives decides TLS for its lifetime.
        let tls = guard.current().tls.clone();
        tokio::spawn(connection::run(
            stream,
            peer,
            tls,
            Arc::clone(&app),
            Arc::clone(&guard),
            slot,
        ));
    }
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
