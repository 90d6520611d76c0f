//! One connection's life: the plain-HTTP check and TLS handshake on a TLS port, HTTP/1.1
//! serving, requests marked busy from complete headers until their response is written, and
//! closing when [`Connections`](super::connections::Connections) says so.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Body, Bytes, Frame, SizeHint};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tracing::debug;

use super::connections::{Busy, Close, Slot};
use super::{plain_to_tls, respond, App, HEADER_READ_TIMEOUT};
use crate::webconfig::Guard;

/// How long an idle connection told to close gets to flush and close by itself.
const IDLE_CLOSE: Duration = Duration::from_millis(100);

/// Serves one accepted connection, over TLS if `tls`, until the client leaves, a timeout
/// fires, or `slot` says to close.
pub(super) async fn run(
    mut stream: TcpStream,
    peer: SocketAddr,
    tls: Option<TlsAcceptor>,
    app: Arc<App>,
    guard: Arc<Guard>,
    mut slot: Slot,
) {
    let result = match tls {
        None => serve(stream, app, guard, slot).await,
        Some(acceptor) => {
            let handshake = async move {
                if plain_to_tls::answered_plain_http(&mut stream).await {
                    debug!(%peer, "Plain HTTP on the TLS port; answered 400");
                    return None;
                }
                acceptor
                    .accept(stream)
                    .await
                    .inspect_err(|err| debug!(%peer, error = %err, "TLS handshake failed"))
                    .ok()
            };
            // A connection in its handshake is idle: it may be closed to make room, or at
            // shutdown, like any other.
            let outcome = tokio::select! {
                outcome = tokio::time::timeout(HEADER_READ_TIMEOUT, handshake) => outcome,
                why = slot.closing() => {
                    debug!(%peer, ?why, "Closed during the TLS handshake");
                    return;
                }
            };
            match outcome {
                Ok(Some(tls_stream)) => serve(tls_stream, app, guard, slot).await,
                Ok(None) => Ok(()),
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
}

async fn serve<S>(
    stream: S,
    app: Arc<App>,
    guard: Arc<Guard>,
    mut slot: Slot,
) -> Result<(), hyper::Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let tracker = slot.tracker();
    let service = service_fn(move |req| {
        // hyper calls the service once the request headers are complete.
        let (app, guard, busy) = (Arc::clone(&app), Arc::clone(&guard), tracker.busy());
        async move {
            let reply = respond(&app, &guard, req).await;
            Ok::<_, Infallible>(reply.map(|body| Tracked { body, _busy: busy }))
        }
    });
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    let why = tokio::select! {
        result = conn.as_mut() => return result,
        why = slot.closing() => why,
    };
    if why == Close::Now {
        return Ok(());
    }
    // No keep-alive from here: hyper closes an idle connection at once and a busy one after
    // its response. An idle one that doesn't close promptly (half-sent headers) is dropped.
    conn.as_mut().graceful_shutdown();
    loop {
        tokio::select! {
            result = conn.as_mut() => return result,
            () = slot.closing_now() => return Ok(()),
            () = tokio::time::sleep(IDLE_CLOSE) => if slot.is_idle() { return Ok(()) },
        }
    }
}

/// A response body that keeps its request marked busy until hyper has taken all of it.
struct Tracked {
    body: Full<Bytes>,
    _busy: Busy,
}

impl Body for Tracked {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
