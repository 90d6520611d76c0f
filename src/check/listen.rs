//! The listen address part of `check`: can the exporter listen on each
//! `--web.listen-address`? A free address is bound and let go at once. A taken one is asked
//! for its landing page over plain HTTP: a running gpu-carbon-exporter there is fine; anything
//! else would stop the exporter from starting.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use super::report::{Section, Status};
use crate::config::Config;

const TIMEOUT: Duration = Duration::from_secs(2);

/// The listen addresses' section.
pub fn check(config: &Config) -> Section {
    let mut s = Section::new("listen address");
    for &addr in &config.listen {
        let (status, detail) = match TcpListener::bind(addr) {
            Ok(_) => (
                Status::Ok,
                "free: the exporter can listen on it".to_string(),
            ),
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => match answers_as_exporter(addr) {
                Ok(true) => (
                    Status::Ok,
                    "a running gpu-carbon-exporter answers on it".to_string(),
                ),
                Ok(false) | Err(_) => (
                    Status::Problem,
                    "taken by a program that is not gpu-carbon-exporter: the exporter could not \
                     listen on it"
                        .to_string(),
                ),
            },
            Err(e) => (Status::Problem, format!("cannot listen on it: {e}")),
        };
        s.add(addr.to_string(), status, detail);
    }
    s
}

/// Whether what listens at `addr` serves gpu-carbon-exporter's landing page.
fn answers_as_exporter(addr: SocketAddr) -> io::Result<bool> {
    let target = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), addr.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv6Addr::LOCALHOST.into(), addr.port())
        }
        _ => addr,
    };
    let mut stream = TcpStream::connect_timeout(&target, TIMEOUT)?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    stream.write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")?;
    let mut body = Vec::new();
    stream.take(256 * 1024).read_to_end(&mut body)?;
    // The landing page's title is "GPU Carbon Exporter".
    let text = String::from_utf8_lossy(&body)
        .to_lowercase()
        .replace('-', " ");
    Ok(text.contains("gpu carbon exporter"))
}
