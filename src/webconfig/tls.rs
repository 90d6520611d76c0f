//! TLS for the server: a rustls configuration (ring provider) from checked
//! [`TlsSettings`](super::file::TlsSettings) and the PEM data they name, with Go's
//! `crypto/tls` client-authentication policies, version bounds, cipher suites and curves.

use std::sync::Arc;

use rustls::crypto::{ring, CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{
    DigitallySignedStruct, DistinguishedName, RootCertStore, ServerConfig, SignatureScheme,
};

use super::file::{ClientAuth, TlsSettings, TlsVersion};

/// Why a TLS configuration can't be built, by the setting at fault.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The certificate chain.
    #[error("certificate: {0}")]
    Cert(String),
    /// The private key.
    #[error("private key: {0}")]
    Key(String),
    /// The client CA.
    #[error("client CA: {0}")]
    ClientCa(String),
    /// `cipher_suites`.
    #[error("{0}")]
    CipherSuite(String),
    /// `curve_preferences`.
    #[error("{0}")]
    Curve(String),
}

impl TlsError {
    /// The configuration keys this error is about, to find its line.
    pub fn keys(&self) -> &'static [&'static str] {
        match self {
            TlsError::Cert(_) => &["cert_file", "cert"],
            TlsError::Key(_) => &["key_file", "key"],
            TlsError::ClientCa(_) => &["client_ca_file", "client_ca"],
            TlsError::CipherSuite(_) => &["cipher_suites"],
            TlsError::Curve(_) => &["curve_preferences"],
        }
    }
}

/// PEM bytes read from the files or inline text the settings name.
pub struct PemData {
    /// Certificate chain, leaf first.
    pub cert: Vec<u8>,
    /// Private key.
    pub key: Vec<u8>,
    /// Client CA bundle.
    pub client_ca: Option<Vec<u8>>,
}

/// A server configuration that speaks HTTP/1.1 over TLS with `settings`.
pub fn server_config(settings: &TlsSettings, pem: &PemData) -> Result<Arc<ServerConfig>, TlsError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem.cert)
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::Cert(format!("not PEM: {e}")))?;
    if chain.is_empty() {
        return Err(TlsError::Cert("no CERTIFICATE block found".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(&pem.key)
        .map_err(|e| TlsError::Key(format!("no usable PEM private key: {e}")))?;
    let provider = Arc::new(provider(settings)?);
    let verifier = client_verifier(settings, pem.client_ca.as_deref(), &provider)?;
    let versions: Vec<&'static rustls::SupportedProtocolVersion> = [
        (TlsVersion::Tls12, &rustls::version::TLS12),
        (TlsVersion::Tls13, &rustls::version::TLS13),
    ]
    .into_iter()
    .filter(|(v, _)| (settings.min_version..=settings.max_version).contains(v))
    .map(|(_, v)| v)
    .collect();
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)
        .map_err(|e| {
            TlsError::CipherSuite(format!(
                "no cipher suite left for the TLS versions allowed: {e}"
            ))
        })?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Key(format!("does not fit the certificate or is unusable: {e}")))?;
    config.ignore_client_order = settings.prefer_server_cipher_suites;
    // Only HTTP/1.1 is served; saying so lets HTTP/2-capable clients settle on it.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// ring's provider, narrowed to the configured TLS 1.2 suites and ordered curves.
fn provider(settings: &TlsSettings) -> Result<CryptoProvider, TlsError> {
    let mut provider = ring::default_provider();
    if !settings.cipher_suites.is_empty() {
        let mut wanted = Vec::new();
        for name in &settings.cipher_suites {
            let iana = go_suite_alias(name);
            let Some(suite) = provider
                .cipher_suites
                .iter()
                .find(|s| format!("{:?}", s.suite()) == iana)
            else {
                return Err(TlsError::CipherSuite(format!(
                    "cipher suite {name:?} is not supported; supported TLS 1.2 suites: {}",
                    tls12_suite_names(&provider).join(", ")
                )));
            };
            wanted.push(*suite);
        }
        // Like Go, the list only governs TLS 1.2; TLS 1.3 suites stay enabled.
        let tls13 = provider
            .cipher_suites
            .iter()
            .filter(|s| s.tls13().is_some())
            .copied();
        let mut suites: Vec<_> = wanted.into_iter().filter(|s| s.tls13().is_none()).collect();
        suites.extend(tls13);
        provider.cipher_suites = suites;
    }
    if !settings.curves.is_empty() {
        let mut groups = Vec::new();
        for name in &settings.curves {
            let group = match name.as_str() {
                "X25519" => rustls::NamedGroup::X25519,
                "CurveP256" => rustls::NamedGroup::secp256r1,
                "CurveP384" => rustls::NamedGroup::secp384r1,
                other => {
                    return Err(TlsError::Curve(format!(
                        "curve {other:?} is not supported; use X25519, CurveP256 or CurveP384"
                    )))
                }
            };
            let found = provider.kx_groups.iter().find(|g| g.name() == group);
            groups.extend(found.copied());
        }
        provider.kx_groups = groups;
    }
    Ok(provider)
}

/// Go also accepts the ChaCha20 suites without their hash suffix.
fn go_suite_alias(name: &str) -> String {
    match name {
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305" | "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305" => {
            format!("{name}_SHA256")
        }
        other => other.to_string(),
    }
}

fn tls12_suite_names(provider: &CryptoProvider) -> Vec<String> {
    provider
        .cipher_suites
        .iter()
        .filter(|s| s.tls13().is_none())
        .map(|s| format!("{:?}", s.suite()))
        .collect()
}

fn client_verifier(
    settings: &TlsSettings,
    client_ca: Option<&[u8]>,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn ClientCertVerifier>, TlsError> {
    let any = |mandatory| -> Arc<dyn ClientCertVerifier> {
        Arc::new(AnyClientCert {
            mandatory,
            algorithms: provider.signature_verification_algorithms,
        })
    };
    let verified = |optional: bool| -> Result<Arc<dyn ClientCertVerifier>, TlsError> {
        let roots = roots(client_ca.unwrap_or_default())?;
        let builder =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(provider));
        let builder = if optional {
            builder.allow_unauthenticated()
        } else {
            builder
        };
        builder
            .build()
            .map_err(|e| TlsError::ClientCa(e.to_string()))
    };
    match settings.client_auth {
        ClientAuth::NoClientCert => Ok(WebPkiClientVerifier::no_client_auth()),
        ClientAuth::RequestClientCert => Ok(any(false)),
        ClientAuth::RequireAnyClientCert => Ok(any(true)),
        ClientAuth::VerifyClientCertIfGiven => verified(true),
        ClientAuth::RequireAndVerifyClientCert => verified(false),
    }
}

fn roots(pem: &[u8]) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|e| TlsError::ClientCa(format!("not PEM: {e}")))?;
        roots
            .add(cert)
            .map_err(|e| TlsError::ClientCa(format!("unusable CA certificate: {e}")))?;
    }
    if roots.is_empty() {
        return Err(TlsError::ClientCa("no CERTIFICATE block found".into()));
    }
    Ok(roots)
}

/// `RequestClientCert` / `RequireAnyClientCert`: take any certificate without checking who
/// issued it (the toolkit warns these are insecure; they exist for compatibility). The
/// handshake signature is still checked, so the client holds the certificate's key.
#[derive(Debug)]
struct AnyClientCert {
    mandatory: bool,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for AnyClientCert {
    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webconfig::file::Pem;

    fn settings() -> TlsSettings {
        TlsSettings {
            cert: Pem::Inline(String::new()),
            key: Pem::Inline(String::new()),
            client_ca: None,
            client_auth: ClientAuth::NoClientCert,
            min_version: TlsVersion::Tls12,
            max_version: TlsVersion::Tls13,
            cipher_suites: Vec::new(),
            curves: Vec::new(),
            prefer_server_cipher_suites: true,
        }
    }

    fn pem() -> PemData {
        let id = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("cert");
        PemData {
            cert: id.cert.pem().into_bytes(),
            key: id.signing_key.serialize_pem().into_bytes(),
            client_ca: None,
        }
    }

    #[test]
    fn go_names_of_suites_and_curves() {
        let mut s = settings();
        s.cipher_suites = vec![
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256".into(),
            "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305".into(),
        ];
        s.curves = vec!["CurveP256".into(), "X25519".into()];
        let p = provider(&s).expect("provider");
        let tls12 = tls12_suite_names(&p);
        assert_eq!(
            tls12,
            [
                "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
                "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"
            ]
        );
        assert!(
            p.cipher_suites.iter().any(|s| s.tls13().is_some()),
            "TLS 1.3 suites stay"
        );
        let groups: Vec<_> = p.kx_groups.iter().map(|g| g.name()).collect();
        assert_eq!(
            groups,
            [rustls::NamedGroup::secp256r1, rustls::NamedGroup::X25519]
        );
        assert!(server_config(&s, &pem()).is_ok());
    }

    #[test]
    fn unsupported_names_and_bad_pem_are_reported_by_setting() {
        let mut s = settings();
        s.cipher_suites = vec!["TLS_RSA_WITH_RC4_128_SHA".into()];
        assert!(
            matches!(provider(&s), Err(TlsError::CipherSuite(m)) if m.contains("supported TLS 1.2 suites"))
        );
        let mut s = settings();
        s.curves = vec!["CurveP521".into()];
        assert!(matches!(provider(&s), Err(TlsError::Curve(_))));

        let good = pem();
        let no_cert = PemData {
            cert: b"junk".to_vec(),
            ..pem()
        };
        assert!(matches!(
            server_config(&settings(), &no_cert),
            Err(TlsError::Cert(_))
        ));
        let other_key = PemData {
            key: pem().key,
            ..pem()
        };
        assert!(matches!(
            server_config(&settings(), &other_key),
            Err(TlsError::Key(_))
        ));
        let mut mtls = settings();
        mtls.client_auth = ClientAuth::RequireAndVerifyClientCert;
        let no_ca = PemData {
            client_ca: Some(b"junk".to_vec()),
            ..good
        };
        assert!(matches!(
            server_config(&mtls, &no_ca),
            Err(TlsError::ClientCa(_))
        ));
    }
}
