//! `--web.config.file` as a user meets it: HTTPS, mTLS, TLS versions, basic auth on every path,
//! extra headers, reloads on SIGHUP and on change, bad files at start and on reload, and the
//! shipped examples against `promtool check web-config`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::pki::{basic, plain_exchange, Client, Pki};
use crate::support::{promtool, request_with, run_to_exit, Exporter, Response, Scrape};

static TLS12_ONLY: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS12];
static TLS13_ONLY: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13];

const TLS: &str = "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n";

fn start(config: &Path) -> Exporter {
    let flag = format!("--web.config.file={}", config.display());
    Exporter::start(&["--demo", "--sample.interval=100ms", &flag], &[])
}

fn hash(password: &str) -> String {
    bcrypt::hash(password, 4).expect("bcrypt")
}

fn users(pairs: &[(&str, &str)]) -> String {
    let mut text = "basic_auth_users:\n".to_string();
    for (user, password) in pairs {
        text.push_str(&format!("  {user}: {}\n", hash(password)));
    }
    text
}

fn get_as(e: &Exporter, path: &str, user: &str, password: &str) -> Response {
    request_with(
        e.addr,
        "GET",
        path,
        &[("Authorization", &basic(user, password))],
    )
}

/// Polls `check` for up to 15 s (reloads are polled every 3 s).
fn eventually(what: &str, e: &Exporter, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what} never happened; log:\n{}", e.log());
}

fn sighup(e: &Exporter) {
    let pid = e.child.id().to_string();
    let status = Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .expect("kill");
    assert!(status.success());
}

#[test]
fn https_scrape_and_plain_http_told_to_use_https() {
    let pki = Pki::new();
    let e = start(&pki.write("web.yml", TLS));
    let client = Client::new(&pki);
    client.wait_ready(e.addr);
    let metrics = client.get(e.addr, "/metrics");
    assert_eq!(metrics.status, 200, "{}", metrics.body);
    let scrape = Scrape::parse(&metrics.body);
    assert!(!scrape.find("gpu_energy_kwh_total", &[]).is_empty());
    assert_eq!(
        scrape.value("gpu_carbon_exporter_web_config_reload_success", &[]),
        1.0
    );
    let loaded = scrape.value(
        "gpu_carbon_exporter_web_config_last_reload_success_timestamp_seconds",
        &[],
    );
    assert!(
        (loaded - crate::support::now_unix()).abs() < 120.0,
        "{loaded}"
    );
    crate::support::assert_promtool_clean(&metrics.body);
    assert!(e.log().contains("metrics=https://"), "{}", e.log());

    // Plain HTTP gets no metrics, only Go's answer (Prometheus then reports "server returned
    // HTTP status 400 Bad Request" rather than "malformed HTTP response").
    let answer = String::from_utf8_lossy(&plain_exchange(e.addr)).to_string();
    assert!(
        answer.starts_with("HTTP/1.0 400 Bad Request\r\n")
            && answer.ends_with("\r\n\r\nClient sent an HTTP request to an HTTPS server.\n"),
        "{answer}"
    );
    assert_eq!(
        client.get(e.addr, "/-/healthy").status,
        200,
        "still serving TLS"
    );
}

#[test]
fn mtls_requires_a_certificate_from_the_client_ca() {
    let pki = Pki::new();
    let config =
        format!("{TLS}  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n");
    let e = start(&pki.write("web.yml", &config));
    let with_cert = Client {
        identity: Some(&pki.client),
        ..Client::new(&pki)
    };
    with_cert.wait_ready(e.addr);
    assert_eq!(with_cert.get(e.addr, "/metrics").status, 200);

    let without = Client::new(&pki).request(e.addr, "/metrics", &[]);
    assert!(without.is_err(), "no client certificate: {without:?}");
    let rogue = Client {
        identity: Some(&pki.rogue_client),
        ..Client::new(&pki)
    };
    let refused = rogue.request(e.addr, "/metrics", &[]);
    assert!(refused.is_err(), "certificate from another CA: {refused:?}");
}

#[test]
fn tls_versions_are_honoured() {
    let pki = Pki::new();
    let tls12 = Client {
        versions: TLS12_ONLY,
        ..Client::new(&pki)
    };
    let tls13 = Client {
        versions: TLS13_ONLY,
        ..Client::new(&pki)
    };

    let only13 = start(&pki.write("min13.yml", &format!("{TLS}  min_version: TLS13\n")));
    tls13.wait_ready(only13.addr);
    assert!(tls12.request(only13.addr, "/-/healthy", &[]).is_err());

    let only12 = start(&pki.write(
        "max12.yml",
        &format!("{TLS}  min_version: TLS12\n  max_version: TLS12\n"),
    ));
    tls12.wait_ready(only12.addr);
    let (r, version) = Client::new(&pki)
        .request(only12.addr, "/-/healthy", &[])
        .expect("TLS 1.2");
    assert_eq!((r.status, version), (200, rustls::ProtocolVersion::TLSv1_2));
    assert!(tls13.request(only12.addr, "/-/healthy", &[]).is_err());
}

/// As with the exporter-toolkit, every path needs credentials, health checks included; the
/// configured headers go on every answer, refusals included.
#[test]
fn basic_auth_on_every_path_and_headers_on_every_answer() {
    let pki = Pki::new();
    let config = format!(
        "{}http_server_config:\n  headers:\n    X-Frame-Options: deny\n    Strict-Transport-Security: max-age=31536000\n",
        users(&[("alice", "wonder"), ("bob", "builder")])
    );
    let e = start(&pki.write("web.yml", &config));
    eventually("ready", &e, || {
        get_as(&e, "/-/ready", "alice", "wonder").status == 200
    });
    for path in ["/", "/metrics", "/-/healthy", "/-/ready", "/nope"] {
        let anonymous = e.get(path);
        assert_eq!(anonymous.status, 401, "{path}");
        assert_eq!(
            anonymous.header("www-authenticate"),
            Some("Basic"),
            "{path}"
        );
        assert_eq!(anonymous.header("x-frame-options"), Some("deny"), "{path}");
        assert_eq!(get_as(&e, path, "alice", "builder").status, 401, "{path}");
        assert_eq!(get_as(&e, path, "mallory", "wonder").status, 401, "{path}");
    }
    for path in ["/", "/metrics", "/-/healthy", "/-/ready"] {
        let ok = get_as(&e, path, "bob", "builder");
        assert_eq!(ok.status, 200, "{path}");
        assert_eq!(ok.header("x-frame-options"), Some("deny"));
        assert_eq!(
            ok.header("strict-transport-security"),
            Some("max-age=31536000")
        );
    }
    assert_eq!(get_as(&e, "/nope", "alice", "wonder").status, 404);
}

#[test]
fn sighup_reload_swaps_users() {
    let pki = Pki::new();
    let path = pki.write("web.yml", &users(&[("alice", "wonder")]));
    let e = start(&path);
    eventually("ready", &e, || {
        get_as(&e, "/-/ready", "alice", "wonder").status == 200
    });
    pki.write("web.yml", &users(&[("bob", "builder")]));
    sighup(&e);
    eventually("bob let in", &e, || {
        get_as(&e, "/metrics", "bob", "builder").status == 200
    });
    assert_eq!(get_as(&e, "/metrics", "alice", "wonder").status, 401);
    eventually("SIGHUP logged", &e, || e.log().contains("trigger=SIGHUP"));
    assert!(
        e.log().contains("Web configuration reloaded"),
        "{}",
        e.log()
    );
}

#[test]
fn broken_reload_keeps_the_old_config_and_says_so() {
    let pki = Pki::new();
    let path = pki.write("web.yml", &users(&[("alice", "wonder")]));
    let e = start(&path);
    eventually("ready", &e, || {
        get_as(&e, "/-/ready", "alice", "wonder").status == 200
    });
    let reload_ok = |e: &Exporter| {
        let r = get_as(e, "/metrics", "alice", "wonder");
        assert_eq!(r.status, 200, "old credentials keep working");
        Scrape::parse(&r.body).value("gpu_carbon_exporter_web_config_reload_success", &[])
    };
    assert_eq!(reload_ok(&e), 1.0);

    pki.write("web.yml", "basic_auth_users:\n  alice: not-a-hash\n");
    eventually("reload failure", &e, || reload_ok(&e) == 0.0);
    let log = e.log();
    assert!(
        log.contains("reload failed") && log.contains("web.yml:2"),
        "{log}"
    );

    // Fixed without a signal: the change is picked up by polling.
    pki.write("web.yml", &users(&[("alice", "wonder2")]));
    eventually("reload success", &e, || {
        let r = get_as(&e, "/metrics", "alice", "wonder2");
        r.status == 200
            && Scrape::parse(&r.body).value("gpu_carbon_exporter_web_config_reload_success", &[])
                == 1.0
    });
    assert!(e.log().contains("trigger=change"), "{}", e.log());
}

#[test]
fn bad_file_at_start_exits_2_naming_file_line_and_reason() {
    let pki = Pki::new();
    let cases = [
        (
            "typo.yml",
            format!("{TLS}  min_versoin: TLS13\n"),
            4,
            "unknown field `min_versoin`",
        ),
        (
            "missing.yml",
            "tls_server_config:\n  cert_file: nope.crt\n  key_file: server.key\n".to_string(),
            2,
            "nope.crt",
        ),
        (
            "mismatch.yml",
            "tls_server_config:\n  cert_file: ca.crt\n  key_file: server.key\n".to_string(),
            3,
            "private key",
        ),
    ];
    for (name, text, line, reason) in cases {
        let path = pki.write(name, &text);
        let flag = format!("--web.config.file={}", path.display());
        let (status, out) = run_to_exit(&["--demo", &flag], &[]);
        assert_eq!(status.code(), Some(2), "{name}: {out}");
        let at = format!("{}:{line}: ", path.display());
        assert!(
            out.contains("--web.config.file") && out.contains(&at) && out.contains(reason),
            "{name}: want {at}…{reason} in {out}"
        );
    }
}

/// The files in `deploy/web-config/` pass `promtool check web-config` (the exporter-toolkit's
/// own validation) and this exporter's, next to certificates named as they expect.
#[test]
fn shipped_examples_pass_promtool_and_load() {
    let pki = Pki::new();
    std::fs::write(pki.dir.join("client-ca.crt"), &pki.ca).expect("client CA");
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("deploy/web-config");
    let mut examples: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("deploy/web-config")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yml"))
        .collect();
    examples.sort();
    assert!(examples.len() >= 4, "{examples:?}");
    let promtool = promtool();
    for example in examples {
        let text = std::fs::read_to_string(&example).expect("example");
        let name = example
            .file_name()
            .expect("name")
            .to_string_lossy()
            .to_string();
        let copy = pki.write(&name, &text);
        let (loaded, _) = gpu_carbon_exporter::webconfig::Security::load(&copy);
        assert!(loaded.is_ok(), "{name}: {:?}", loaded.err());
        if let Some(promtool) = &promtool {
            let out = Command::new(promtool)
                .args(["check", "web-config"])
                .arg(&copy)
                .output()
                .expect("promtool");
            assert!(
                out.status.success(),
                "promtool check web-config {name}: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
}

/// What `promtool check web-config` (the exporter-toolkit's own check) refuses, the exporter
/// refuses at start with exit code 2 and the line — not at the first login: keys given twice,
/// bcrypt costs outside 4-31, a password that isn't a hash. An empty file goes further: the
/// toolkit accepts it (as "no protection"), the exporter refuses it.
#[test]
fn what_promtool_refuses_is_refused_at_start() {
    let pki = Pki::new();
    let h = hash("x");
    let cost = |c: &str| h.replacen("$04$", &format!("${c}$"), 1);
    let cases = [
        (
            "dup-user.yml",
            format!("basic_auth_users:\n  a: {h}\n  a: {h}\n"),
            3,
            "duplicate key",
        ),
        (
            "dup-section.yml",
            format!("basic_auth_users:\n  a: {h}\nbasic_auth_users:\n  b: {h}\n"),
            3,
            "duplicate field",
        ),
        (
            "cost3.yml",
            format!("basic_auth_users:\n  a: {}\n", cost("03")),
            2,
            "cost 3",
        ),
        (
            "cost32.yml",
            format!("basic_auth_users:\n  a: {}\n", cost("32")),
            2,
            "cost 32",
        ),
        (
            "plain.yml",
            "basic_auth_users:\n  a: hunter2\n".to_string(),
            2,
            "not a bcrypt hash",
        ),
    ];
    let promtool = promtool();
    for (name, text, line, reason) in &cases {
        let path = pki.write(name, text);
        if let Some(promtool) = &promtool {
            let out = Command::new(promtool)
                .args(["check", "web-config"])
                .arg(&path)
                .output()
                .expect("promtool");
            assert!(!out.status.success(), "promtool accepted {name}");
        }
        let flag = format!("--web.config.file={}", path.display());
        let (status, out) = run_to_exit(&["--demo", &flag], &[]);
        assert_eq!(status.code(), Some(2), "{name}: {out}");
        let at = format!("{}:{line}: ", path.display());
        assert!(
            out.contains(&at) && out.contains(reason),
            "{name}: want {at}…{reason} in {out}"
        );
    }
    let empty = pki.write("empty.yml", "# nothing yet\n");
    let (status, out) = run_to_exit(
        &["--demo", &format!("--web.config.file={}", empty.display())],
        &[],
    );
    assert_eq!(status.code(), Some(2), "{out}");
    assert!(out.contains("empty"), "{out}");
}

/// `rate_limit` is a token bucket over every request: a burst of `burst` gets in, the next one
/// is answered `429` until a token is earned back (one per `interval`).
#[test]
fn over_the_rate_limit_requests_get_429() {
    let pki = Pki::new();
    let config = pki.write("web.yml", "rate_limit:\n  interval: 1h\n  burst: 3\n");
    let e = start(&config);
    let statuses: Vec<u16> = ["/-/healthy", "/metrics", "/", "/metrics", "/-/healthy"]
        .iter()
        .map(|path| e.get(path).status)
        .collect();
    assert_eq!(statuses, [200, 200, 200, 429, 429], "{}", e.log());
}
