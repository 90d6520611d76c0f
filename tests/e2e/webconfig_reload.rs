//! "A reload never lowers protection", on the real binary: a web configuration reload that
//! would turn TLS off, check client certificates less or drop basic auth is refused (the old
//! configuration stays, `reload_success` is 0, a warning says why), an empty file is an error,
//! and reloads that keep or raise protection apply. Checked on the example and on a
//! random walk through configurations (seed printed; set `GCE_RELOAD_SEED` to replay one),
//! observing what a client meets — not what the log claims.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::pki::{basic, Client, Pki};
use crate::support::{request_with, Exporter, Response, Scrape};

const USER: &str = "prometheus";
const PASSWORD: &str = "s3cret";
const TLS: &str = "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n";
const IF_GIVEN: &str = "  client_auth_type: VerifyClientCertIfGiven\n  client_ca_file: ca.crt\n";
const MTLS: &str = "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n";

/// What a client can observe of the protection in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Certs {
    NotVerified,
    VerifiedIfGiven,
    Required,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seen {
    tls: bool,
    certs: Certs,
    auth: bool,
}

impl Seen {
    fn at_least(&self, other: &Seen) -> bool {
        self.tls >= other.tls && self.certs >= other.certs && self.auth >= other.auth
    }
}

/// A web configuration file and the protection it asks for (`None`: it doesn't load).
struct Variant {
    name: &'static str,
    text: fn() -> String,
    gives: Option<Seen>,
}

fn users() -> String {
    let hash = bcrypt::hash(PASSWORD, 4).expect("bcrypt");
    format!("basic_auth_users:\n  {USER}: {hash}\n")
}

const fn seen(tls: bool, certs: Certs, auth: bool) -> Option<Seen> {
    Some(Seen { tls, certs, auth })
}

fn variants() -> Vec<Variant> {
    use Certs::*;
    vec![
        Variant {
            name: "empty",
            text: String::new,
            gives: None,
        },
        Variant {
            name: "comments only",
            text: || "# emptied by mistake\n\n".into(),
            gives: None,
        },
        Variant {
            name: "broken YAML",
            text: || "basic_auth_users: [\n".into(),
            gives: None,
        },
        Variant {
            name: "explicit empty mapping",
            text: || "{}\n".into(),
            gives: seen(false, NotVerified, false),
        },
        Variant {
            name: "basic auth only",
            text: users,
            gives: seen(false, NotVerified, true),
        },
        Variant {
            name: "TLS only",
            text: || TLS.into(),
            gives: seen(true, NotVerified, false),
        },
        Variant {
            name: "TLS + basic auth",
            text: || format!("{TLS}{}", users()),
            gives: seen(true, NotVerified, true),
        },
        Variant {
            name: "TLS + client cert if given",
            text: || format!("{TLS}{IF_GIVEN}"),
            gives: seen(true, VerifiedIfGiven, false),
        },
        Variant {
            name: "mTLS",
            text: || format!("{TLS}{MTLS}"),
            gives: seen(true, Required, false),
        },
        Variant {
            name: "mTLS + basic auth",
            text: || format!("{TLS}{MTLS}{}", users()),
            gives: seen(true, Required, true),
        },
    ]
}

/// Probes the exporter as clients would: plain and TLS, with and without a certificate (of the
/// right CA or another), with and without credentials. Also returns `reload_success`.
fn observe(pki: &Pki, e: &Exporter) -> (Seen, f64) {
    let auth = basic(USER, PASSWORD);
    let good = Client {
        identity: Some(&pki.client),
        ..Client::new(pki)
    };
    let tls = good
        .request(e.addr, "/-/healthy", &[("Authorization", &auth)])
        .is_ok();
    let get = |path: &str, headers: &[(&str, &str)]| -> Response {
        if tls {
            good.request(e.addr, path, headers)
                .map(|r| r.0)
                .unwrap_or_else(|err| panic!("HTTPS {path} failed: {err}; log:\n{}", e.log()))
        } else {
            request_with(e.addr, "GET", path, headers)
        }
    };
    let certs = if !tls {
        Certs::NotVerified
    } else if Client::new(pki)
        .request(e.addr, "/-/healthy", &[("Authorization", &auth)])
        .is_err()
    {
        Certs::Required
    } else {
        let rogue = Client {
            identity: Some(&pki.rogue_client),
            ..Client::new(pki)
        };
        match rogue.request(e.addr, "/-/healthy", &[("Authorization", &auth)]) {
            Err(_) => Certs::VerifiedIfGiven,
            Ok(_) => Certs::NotVerified,
        }
    };
    let anonymous = get("/-/healthy", &[]);
    let metrics = get("/metrics", &[("Authorization", &auth)]);
    assert_eq!(metrics.status, 200, "{metrics:?}");
    let ok =
        Scrape::parse(&metrics.body).value("gpu_carbon_exporter_web_config_reload_success", &[]);
    (
        Seen {
            tls,
            certs,
            auth: anonymous.status == 401,
        },
        ok,
    )
}

fn outcomes(e: &Exporter) -> usize {
    e.log()
        .lines()
        .filter(|l| l.contains("trigger=SIGHUP"))
        .filter(|l| {
            l.contains("Web configuration reloaded")
                || l.contains("reload refused")
                || l.contains("reload failed")
        })
        .count()
}

/// Writes `text` as the web configuration, sends SIGHUP and waits until that reload is logged.
fn reload(pki: &Pki, e: &Exporter, text: &str) -> String {
    let before = outcomes(e);
    pki.write("web.yml", text);
    let pid = e.child.id().to_string();
    let sent = std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .expect("kill");
    assert!(sent.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    while outcomes(e) == before {
        assert!(
            Instant::now() < deadline,
            "reload never logged; log:\n{}",
            e.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    e.log()
        .lines()
        .rev()
        .find(|l| l.contains("trigger=SIGHUP"))
        .unwrap_or_default()
        .to_string()
}

fn start(pki: &Pki, text: &str) -> (Exporter, PathBuf) {
    let path = pki.write("web.yml", text);
    let flag = format!("--web.config.file={}", path.display());
    let e = Exporter::start(&["--demo", "--sample.interval=100ms", &flag], &[]);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let auth = basic(USER, PASSWORD);
        let good = Client {
            identity: Some(&pki.client),
            ..Client::new(pki)
        };
        let ready = match good.request(e.addr, "/-/ready", &[("Authorization", &auth)]) {
            Ok((r, _)) => r.status == 200,
            Err(_) => {
                request_with(e.addr, "GET", "/-/ready", &[("Authorization", &auth)]).status == 200
            }
        };
        if ready {
            return (e, path);
        }
        assert!(Instant::now() < deadline, "never ready; log:\n{}", e.log());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The measurement: TLS + basic auth, then the file is emptied and SIGHUP sent. The
/// port stays TLS with authentication, `reload_success` drops to 0 and the log says why.
#[test]
fn emptied_file_keeps_tls_and_basic_auth() {
    let pki = Pki::new();
    let (e, _) = start(&pki, &format!("{TLS}{}", users()));
    let before = observe(&pki, &e);
    assert_eq!(
        before,
        (
            Seen {
                tls: true,
                certs: Certs::NotVerified,
                auth: true
            },
            1.0
        )
    );
    for (text, says) in [
        ("", "empty"),
        ("# nothing here\n", "empty"),
        ("{}\n", "turns TLS off, drops basic authentication"),
    ] {
        let line = reload(&pki, &e, text);
        assert!(line.contains(says), "{text:?}: {line}");
        assert!(
            line.contains("level=warn") || line.contains("level=error"),
            "{line}"
        );
        assert_eq!(observe(&pki, &e), (before.0, 0.0), "{text:?}");
        // A plain-HTTP client still meets TLS: it is told so and gets nothing.
        let plain = request_with(
            e.addr,
            "GET",
            "/metrics",
            &[("Authorization", &basic(USER, PASSWORD))],
        );
        assert_eq!(plain.status, 400, "{plain:?}");
    }
    // Raising protection (adding mTLS) applies without a restart.
    let line = reload(&pki, &e, &format!("{TLS}{MTLS}{}", users()));
    assert!(line.contains("Web configuration reloaded"), "{line}");
    assert_eq!(
        observe(&pki, &e),
        (
            Seen {
                tls: true,
                certs: Certs::Required,
                auth: true
            },
            1.0
        )
    );
}

/// A random walk through configurations, weak and strong, loadable or not. After every reload
/// the protection a client meets is what the model says: the new file's if it loads and keeps
/// every protection in force, else the old one; and it never drops below the strongest seen.
#[test]
fn random_reloads_never_lower_protection() {
    let seed = std::env::var("GCE_RELOAD_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| crate::support::now_unix().to_bits() | 1);
    eprintln!("random_reloads_never_lower_protection: GCE_RELOAD_SEED={seed}");
    let mut rng = seed;
    let mut next = move |n: usize| {
        // xorshift64: enough to vary the walk, reproducible from the seed.
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        (rng % n as u64) as usize
    };
    let all = variants();
    let pki = Pki::new();
    let first = &all[4]; // basic auth only: room to go up and down.
    let (e, _) = start(&pki, &(first.text)());
    let mut in_force = first.gives.expect("loads");
    let mut strongest = in_force;
    assert_eq!(observe(&pki, &e), (in_force, 1.0));
    for step in 0..14 {
        let v = &all[next(all.len())];
        let line = reload(&pki, &e, &(v.text)());
        let accepted = v.gives.filter(|g| g.at_least(&in_force));
        if let Some(g) = accepted {
            in_force = g;
        }
        let (now, ok) = observe(&pki, &e);
        assert_eq!(
            (now, ok),
            (in_force, if accepted.is_some() { 1.0 } else { 0.0 }),
            "seed {seed} step {step} ({}): {line}",
            v.name
        );
        assert!(
            now.at_least(&strongest),
            "seed {seed} step {step}: protection lowered"
        );
        strongest = in_force;
    }
}
