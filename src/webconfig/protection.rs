//! The protection a web configuration gives, reduced to what a reload may never take away:
//! TLS, verification of client certificates, and basic authentication. A reload that would give
//! up any of them is refused (the previous configuration stays in force) — a truncated file, a
//! wrong secret mounted or a bad edit must not open the endpoint; doing it on purpose takes a
//! restart. Everything else (users, passwords, certificates, headers, rate limit, TLS versions)
//! may change on reload.

use std::fmt;

use super::file::{ClientAuth, WebConfig};

/// How client certificates are checked, weakest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ClientCerts {
    /// Not verified against a CA (none asked, or any accepted).
    NotVerified,
    /// Verified when sent; a client without one still connects (`VerifyClientCertIfGiven`).
    VerifiedIfGiven,
    /// Required and verified: mTLS (`RequireAndVerifyClientCert`).
    Required,
}

/// What a loaded web configuration protects the endpoint with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Protection {
    /// Connections use TLS.
    pub tls: bool,
    /// Client certificate checking.
    pub client_certs: ClientCerts,
    /// Requests need basic-auth credentials.
    pub basic_auth: bool,
}

impl Protection {
    /// No web configuration: plain HTTP, anyone.
    pub const OPEN: Protection = Protection {
        tls: false,
        client_certs: ClientCerts::NotVerified,
        basic_auth: false,
    };

    /// What `config` asks for.
    pub fn of(config: &WebConfig) -> Protection {
        let client_certs = match config.tls.as_ref().map(|t| t.client_auth) {
            Some(ClientAuth::RequireAndVerifyClientCert) => ClientCerts::Required,
            Some(ClientAuth::VerifyClientCertIfGiven) => ClientCerts::VerifiedIfGiven,
            _ => ClientCerts::NotVerified,
        };
        Protection {
            tls: config.tls.is_some(),
            client_certs,
            basic_auth: !config.users.is_empty(),
        }
    }

    /// What going from `self` to `next` would give up; empty if nothing.
    pub fn lost_to(&self, next: &Protection) -> Vec<Loss> {
        let mut lost = Vec::new();
        if self.tls && !next.tls {
            lost.push(Loss::Tls);
        }
        if next.client_certs < self.client_certs {
            lost.push(Loss::ClientCerts(self.client_certs, next.client_certs));
        }
        if self.basic_auth && !next.basic_auth {
            lost.push(Loss::BasicAuth);
        }
        lost
    }
}

/// One kind of protection a reload would give up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loss {
    /// TLS would be turned off.
    Tls,
    /// Client certificates would be checked less (from, to).
    ClientCerts(ClientCerts, ClientCerts),
    /// Basic authentication would be dropped.
    BasicAuth,
}

impl fmt::Display for Loss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Loss::Tls => f.write_str("turns TLS off"),
            Loss::ClientCerts(from, to) => write!(
                f,
                "weakens client certificate checking from {from:?} to {to:?}"
            ),
            Loss::BasicAuth => f.write_str("drops basic authentication"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ClientCerts::*;

    fn p(tls: bool, client_certs: ClientCerts, basic_auth: bool) -> Protection {
        Protection {
            tls,
            client_certs,
            basic_auth,
        }
    }

    /// Every pair of states: a change is refused exactly when it removes something.
    #[test]
    fn a_change_is_a_loss_exactly_when_it_removes_something() {
        let mut all = Vec::new();
        for tls in [false, true] {
            for certs in [NotVerified, VerifiedIfGiven, Required] {
                for auth in [false, true] {
                    if tls || certs == NotVerified {
                        all.push(p(tls, certs, auth));
                    }
                }
            }
        }
        for from in &all {
            for to in &all {
                let lost = from.lost_to(to);
                let weaker = (from.tls && !to.tls)
                    || to.client_certs < from.client_certs
                    || (from.basic_auth && !to.basic_auth);
                assert_eq!(!lost.is_empty(), weaker, "{from:?} -> {to:?}: {lost:?}");
                assert!(
                    to.lost_to(to).is_empty() && from.lost_to(from).is_empty(),
                    "no change, no loss"
                );
            }
        }
        assert_eq!(
            p(true, Required, true).lost_to(&Protection::OPEN),
            [
                Loss::Tls,
                Loss::ClientCerts(Required, NotVerified),
                Loss::BasicAuth
            ]
        );
        assert!(Protection::OPEN
            .lost_to(&p(true, Required, true))
            .is_empty());
        assert_eq!(
            Loss::ClientCerts(Required, VerifiedIfGiven).to_string(),
            "weakens client certificate checking from Required to VerifiedIfGiven"
        );
    }
}
