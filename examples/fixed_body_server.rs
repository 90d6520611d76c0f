//! The floor for the scrape benchmark (`scripts/bench-scrape.sh`): a server on the same HTTP
//! stack (hyper 1, HTTP/1.1 keep-alive, tokio with two workers) that answers every request with
//! one fixed body read from a file at start. The exporter's scrape latency is compared with
//! this, so what is measured is the exporter's own work, not the client or the machine.
//! Usage: `cargo run --release --example fixed_body_server -- BODY_FILE PORT [gzip]`.

use std::convert::Infallible;
use std::net::SocketAddr;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(file), Some(port)) = (args.next(), args.next()) else {
        anyhow::bail!("usage: fixed_body_server BODY_FILE PORT [gzip]");
    };
    let gzip = args.next().as_deref() == Some("gzip");
    let body = Bytes::from(std::fs::read(&file)?);
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(async move {
            let listener = TcpListener::bind(addr).await?;
            loop {
                let (stream, _) = listener.accept().await?;
                let body = body.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |_req: Request<hyper::body::Incoming>| {
                        let mut r = Response::new(Full::new(body.clone()));
                        r.headers_mut().insert(
                            hyper::header::CONTENT_TYPE,
                            hyper::header::HeaderValue::from_static(
                                "text/plain; version=0.0.4; charset=utf-8",
                            ),
                        );
                        if gzip {
                            r.headers_mut().insert(
                                hyper::header::CONTENT_ENCODING,
                                hyper::header::HeaderValue::from_static("gzip"),
                            );
                        }
                        async move { Ok::<_, Infallible>(r) }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        })
}
