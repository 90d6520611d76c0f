//! Test-only PKI and a TLS client for the secure-serving tests: a CA, a server certificate for
//! `localhost`/127.0.0.1, client certificates from that CA and from an unrelated one, all made
//! at test time with rcgen (nothing secret is committed), and synchronous rustls requests.

#![allow(dead_code)]

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{
    ClientConfig, ClientConnection, RootCertStore, StreamOwned, SupportedProtocolVersion,
};

use crate::support::{parse_response, temp_file, Response};

/// A certificate and its key, in PEM.
pub struct Identity {
    pub cert: String,
    pub key: String,
}

/// Everything the tests need, written to `dir` as `ca.crt`, `server.crt`, `server.key`.
pub struct Pki {
    pub dir: PathBuf,
    pub ca: String,
    /// The server certificate and key written as `server.crt` and `server.key`.
    pub server: Identity,
    pub client: Identity,
    /// A client certificate from another CA, which the server must refuse under mTLS.
    pub rogue_client: Identity,
    issuer: Issuer<'static, KeyPair>,
}

fn ca(name: &str) -> (String, Issuer<'static, KeyPair>) {
    let key = KeyPair::generate().expect("CA key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    let cert = params.self_signed(&key).expect("CA cert");
    (cert.pem(), Issuer::new(params, key))
}

fn leaf(names: &[&str], issuer: &Issuer<'_, KeyPair>) -> Identity {
    let key = KeyPair::generate().expect("leaf key");
    let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    let cert = CertificateParams::new(names)
        .expect("leaf params")
        .signed_by(&key, issuer)
        .expect("leaf cert");
    Identity {
        cert: cert.pem(),
        key: key.serialize_pem(),
    }
}

impl Pki {
    /// A fresh PKI in a fresh directory.
    pub fn new() -> Pki {
        let (ca_pem, issuer) = ca("gpu-carbon-exporter test CA");
        let server = leaf(&["localhost", "127.0.0.1"], &issuer);
        let client = leaf(&["prometheus"], &issuer);
        let (_, rogue_issuer) = ca("someone else's CA");
        let rogue_client = leaf(&["prometheus"], &rogue_issuer);
        let dir = temp_file("ca.crt", &ca_pem)
            .parent()
            .expect("temp dir")
            .to_path_buf();
        std::fs::write(dir.join("server.crt"), &server.cert).expect("write cert");
        std::fs::write(dir.join("server.key"), &server.key).expect("write key");
        Pki {
            dir,
            ca: ca_pem,
            server,
            client,
            rogue_client,
            issuer,
        }
    }

    /// A new server certificate for `localhost`/127.0.0.1 with a new key, from the same CA:
    /// what a renewal gives.
    pub fn renew_server(&self) -> Identity {
        leaf(&["localhost", "127.0.0.1"], &self.issuer)
    }

    /// Writes `text` as `name` next to the certificates and returns its path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.join(name);
        // Write then rename, as config management does, so a poll never sees half a file.
        let tmp = self.dir.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, text).expect("write");
        std::fs::rename(&tmp, &path).expect("rename");
        path
    }
}

/// How a test connects.
pub struct Client<'a> {
    pub pki: &'a Pki,
    pub identity: Option<&'a Identity>,
    pub versions: &'static [&'static SupportedProtocolVersion],
}

impl<'a> Client<'a> {
    /// TLS 1.2 or 1.3, no client certificate.
    pub fn new(pki: &'a Pki) -> Client<'a> {
        Client {
            pki,
            identity: None,
            versions: rustls::ALL_VERSIONS,
        }
    }

    fn config(&self) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(self.pki.ca.as_bytes()) {
            roots.add(cert.expect("CA PEM")).expect("add CA");
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(self.versions)
            .expect("versions")
            .with_root_certificates(roots);
        let config = match self.identity {
            None => builder.with_no_client_auth(),
            Some(id) => {
                let chain = CertificateDer::pem_slice_iter(id.cert.as_bytes())
                    .collect::<Result<Vec<_>, _>>()
                    .expect("client cert");
                let key = PrivateKeyDer::from_pem_slice(id.key.as_bytes()).expect("client key");
                builder
                    .with_client_auth_cert(chain, key)
                    .expect("client auth")
            }
        };
        Arc::new(config)
    }

    /// A TLS stream to `addr` (the handshake happens at the first write or read), with a 10 s
    /// read timeout.
    pub fn connect(
        &self,
        addr: SocketAddr,
    ) -> Result<StreamOwned<ClientConnection, TcpStream>, String> {
        let name = ServerName::try_from("localhost").expect("server name");
        let conn = ClientConnection::new(self.config(), name).map_err(|e| e.to_string())?;
        let sock = TcpStream::connect(addr).map_err(|e| e.to_string())?;
        sock.set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|e| e.to_string())?;
        Ok(StreamOwned::new(conn, sock))
    }

    /// One HTTPS request; `Err` with the reason if TLS or the connection fails. Also returns
    /// the TLS version negotiated.
    pub fn request(
        &self,
        addr: SocketAddr,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<(Response, rustls::ProtocolVersion), String> {
        self.request_seeing_cert(addr, path, headers)
            .map(|(r, version, _)| (r, version))
    }

    /// [`Client::request`], also returning the certificate the server presented (DER).
    pub fn request_seeing_cert(
        &self,
        addr: SocketAddr,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<(Response, rustls::ProtocolVersion, Vec<u8>), String> {
        let mut tls = self.connect(addr)?;
        let mut head = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        tls.write_all(head.as_bytes()).map_err(|e| e.to_string())?;
        let mut raw = Vec::new();
        let mut buf = [0u8; 16 * 1024];
        loop {
            match tls.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => raw.extend_from_slice(&buf[..n]),
                // A peer that closes without close_notify after a full answer.
                Err(e) if e.kind() == ErrorKind::UnexpectedEof && !raw.is_empty() => break,
                Err(e) => return Err(e.to_string()),
            }
        }
        if raw.is_empty() {
            return Err("connection closed without an answer".into());
        }
        let version = tls.conn.protocol_version().ok_or("no TLS version")?;
        let cert = tls
            .conn
            .peer_certificates()
            .and_then(|chain| chain.first())
            .ok_or("no server certificate")?
            .to_vec();
        Ok((parse_response(&raw), version, cert))
    }

    /// GET `path`, expecting success of the transport.
    pub fn get(&self, addr: SocketAddr, path: &str) -> Response {
        self.request(addr, path, &[])
            .unwrap_or_else(|e| panic!("HTTPS GET {path} failed: {e}"))
            .0
    }

    /// Polls `/-/ready` over TLS until 200.
    pub fn wait_ready(&self, addr: SocketAddr) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok((r, _)) = self.request(addr, "/-/ready", &[]) {
                if r.status == 200 {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("exporter never became ready over TLS");
    }
}

/// `Authorization: Basic …` for `user:password`.
pub fn basic(user: &str, password: &str) -> String {
    use base64::Engine;
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {token}")
}

/// Sends a plain-text HTTP request and returns whatever comes back (for TLS ports: no HTTP).
pub fn plain_exchange(addr: SocketAddr) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let _ = s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

/// The DER of the first certificate in `pem`.
pub fn der(pem: &str) -> Vec<u8> {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .next()
        .expect("a certificate")
        .expect("PEM")
        .to_vec()
}

/// The directory of `path`.
pub fn dir_of(path: &Path) -> &Path {
    path.parent().expect("has a directory")
}
