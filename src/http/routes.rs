//! Routing: the landing page, the telemetry path, health and readiness; 404 and 405 elsewhere.

use hyper::header::{HeaderValue, ACCEPT, ACCEPT_ENCODING, ALLOW, CONTENT_ENCODING, VARY};
use hyper::{Method, Request, StatusCode};
use tokio::sync::{Semaphore, SemaphorePermit};
use tracing::error;

use super::landing;
use crate::exposition::negotiate::negotiate;
use crate::exposition::Exposition;
use crate::reply::{text, with_type};
use crate::snapshot::Published;

/// Response type of every route.
pub use crate::reply::Reply;

/// What the server serves.
pub struct App {
    exposition: Exposition,
    snapshots: Published,
    telemetry_path: String,
    setup: landing::Setup,
    in_flight: Semaphore,
}

impl App {
    /// The routes, rendering from `exposition` and judging readiness from `snapshots`.
    /// `backend` and `carbon` describe the set-up on the landing page.
    pub fn new(
        exposition: Exposition,
        snapshots: Published,
        telemetry_path: String,
        max_requests: usize,
        setup: &landing::Setup,
    ) -> App {
        App {
            exposition,
            snapshots,
            setup: setup.clone(),
            telemetry_path,
            in_flight: Semaphore::new(max_requests),
        }
    }

    /// The path metrics are served on.
    pub fn telemetry_path(&self) -> &str {
        &self.telemetry_path
    }

    /// A slot among the requests served at once, or `None` when all are taken (answer
    /// [`App::busy`]). Taken after authentication, held while routing and rendering.
    pub fn admit(&self) -> Option<SemaphorePermit<'_>> {
        self.in_flight.try_acquire().ok()
    }

    /// The answer when no slot is free.
    pub fn busy() -> Reply {
        text(
            StatusCode::SERVICE_UNAVAILABLE,
            "Too many requests in flight; try again.\n",
        )
    }

    /// Answers one admitted request. Synchronous and quick: rendering reads only the published
    /// snapshot.
    pub fn route<B>(&self, req: &Request<B>) -> Reply {
        let path = req.uri().path();
        let known = path == "/"
            || path == self.telemetry_path
            || path == "/-/healthy"
            || path == "/-/ready";
        if !known {
            return text(StatusCode::NOT_FOUND, "Not found.\n");
        }
        if req.method() != Method::GET && req.method() != Method::HEAD {
            let mut r = text(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed.\n");
            r.headers_mut()
                .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
            return r;
        }
        match path {
            "/" => {
                // Clone the Arc so the sampler is never held up while the page is written.
                let latest = self.snapshots.borrow().clone();
                let page = landing::page(&self.telemetry_path, &self.setup, latest.as_deref());
                with_type(StatusCode::OK, page, "text/html; charset=utf-8")
            }
            "/-/healthy" => text(StatusCode::OK, "Healthy.\n"),
            "/-/ready" if self.snapshots.borrow().is_some() => text(StatusCode::OK, "Ready.\n"),
            "/-/ready" => text(
                StatusCode::SERVICE_UNAVAILABLE,
                "Not ready: no sample taken yet.\n",
            ),
            _ => self.metrics(req),
        }
    }

    fn metrics<B>(&self, req: &Request<B>) -> Reply {
        let header = |name| req.headers().get(name).and_then(|v| v.to_str().ok());
        let how = negotiate(header(ACCEPT), header(ACCEPT_ENCODING));
        match self.exposition.body(how) {
            Ok(body) => {
                let mut r = with_type(StatusCode::OK, body, how.format.content_type());
                let headers = r.headers_mut();
                headers.insert(VARY, HeaderValue::from_static("Accept, Accept-Encoding"));
                if how.gzip {
                    headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
                }
                r
            }
            Err(err) => {
                error!(error = %err, "Rendering metrics failed");
                text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Rendering metrics failed.\n",
                )
            }
        }
    }
}
