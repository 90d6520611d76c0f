//! The one shape of HTTP answer every part of the exporter builds: a whole body with its
//! content type. Shared by the server's routes and the web configuration's refusals.

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Response, StatusCode};

/// A response with a whole body.
pub type Reply = Response<Full<Bytes>>;

/// `body` with `status` and `content_type`.
pub fn with_type(status: StatusCode, body: impl Into<Bytes>, content_type: &'static str) -> Reply {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// A short plain-text answer.
pub fn text(status: StatusCode, body: &'static str) -> Reply {
    with_type(status, body, "text/plain; charset=utf-8")
}
