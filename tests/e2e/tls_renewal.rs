//! Certificate renewal without a restart, on the real binary: the certificate and key files
//! that `--web.config.file` names are replaced as certbot or cert-manager would (new files
//! renamed over the old, and overwritten in place), and a new TLS connection then meets the
//! new certificate, with the same process serving and every scrape answered meanwhile. A
//! renewal to a key that doesn't fit keeps the certificate in force and says so.

use std::time::{Duration, Instant};

use crate::pki::{der, Client, Identity, Pki};
use crate::support::{Exporter, Scrape};

const TLS: &str = "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n";

/// One HTTPS scrape: the certificate presented and `reload_success`. Every scrape must be
/// answered `200`, whatever state the files are in.
fn scrape(e: &Exporter, client: &Client) -> (Vec<u8>, f64) {
    let (r, _, cert) = client
        .request_seeing_cert(e.addr, "/metrics", &[])
        .unwrap_or_else(|err| panic!("HTTPS scrape failed: {err}; log:\n{}", e.log()));
    assert_eq!(r.status, 200, "{}", r.body);
    let ok = Scrape::parse(&r.body).value("gpu_carbon_exporter_web_config_reload_success", &[]);
    (cert, ok)
}

/// Scrapes until `done` says so (within 20 s: reloads are polled every 3 s, and a renewal seen
/// half-written takes one more poll); every certificate presented meanwhile must be one of
/// `allowed`.
fn scrape_until(
    e: &Exporter,
    client: &Client,
    allowed: &[&Identity],
    what: &str,
    mut done: impl FnMut(&[u8], f64) -> bool,
) {
    let allowed: Vec<Vec<u8>> = allowed.iter().map(|id| der(&id.cert)).collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (cert, ok) = scrape(e, client);
        assert!(allowed.contains(&cert), "{what}: unexpected certificate");
        if done(&cert, ok) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: never; log:\n{}",
            e.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Writes a renewed certificate and key: renamed over the old files (a new inode, as certbot's
/// symlink swap or a rename), or written into them in place. The certificate goes first, so a
/// poll may see it next to the old key.
fn install(pki: &Pki, id: &Identity, in_place: bool) {
    for (name, text) in [("server.crt", &id.cert), ("server.key", &id.key)] {
        if in_place {
            std::fs::write(pki.dir.join(name), text).expect("overwrite");
        } else {
            pki.write(name, text);
        }
    }
}

#[test]
fn renewed_certificates_apply_to_new_connections_without_a_restart() {
    let pki = Pki::new();
    let flag = format!("--web.config.file={}", pki.write("web.yml", TLS).display());
    let mut e = Exporter::start(&["--demo", "--sample.interval=100ms", &flag], &[]);
    let client = Client::new(&pki);
    client.wait_ready(e.addr);
    let pid = e.child.id();
    let first = &pki.server;
    assert_eq!(scrape(&e, &client), (der(&first.cert), 1.0));

    // Renewed by renaming new files over the old ones.
    let renamed = pki.renew_server();
    install(&pki, &renamed, false);
    scrape_until(
        &e,
        &client,
        &[first, &renamed],
        "renamed-over renewal",
        |c, ok| c == der(&renamed.cert) && ok == 1.0,
    );

    // Renewed by overwriting the same files in place.
    let overwritten = pki.renew_server();
    install(&pki, &overwritten, true);
    scrape_until(
        &e,
        &client,
        &[&renamed, &overwritten],
        "in-place renewal",
        |c, ok| c == der(&overwritten.cert) && ok == 1.0,
    );

    // A renewal whose key doesn't fit the certificate: the certificate in force stays,
    // `reload_success` drops to 0, and the log names the file, the line and the key.
    let renewed = pki.renew_server();
    let wrong_key = pki.renew_server().key;
    pki.write("server.crt", &renewed.cert);
    pki.write("server.key", &wrong_key);
    scrape_until(&e, &client, &[&overwritten], "refused renewal", |_, ok| {
        ok == 0.0
    });
    let web = pki.dir.join("web.yml");
    let failed = e
        .log()
        .lines()
        .rev()
        .find(|l| l.contains("reload failed"))
        .unwrap_or_default()
        .to_string();
    assert!(
        failed.contains("level=error")
            && failed.contains("trigger=change")
            && failed.contains(&format!("{}:3", web.display()))
            && failed.contains("private key"),
        "{failed}"
    );
    // The right key arrives: the renewal applies.
    pki.write("server.key", &renewed.key);
    scrape_until(
        &e,
        &client,
        &[&overwritten, &renewed],
        "fixed renewal",
        |c, ok| c == der(&renewed.cert) && ok == 1.0,
    );

    // All of it without a restart: the process started is the one serving, and it started once.
    assert_eq!(e.child.id(), pid);
    assert!(e.child.try_wait().expect("try_wait").is_none(), "exited");
    let log = e.log();
    let starts = log.lines().filter(|l| l.contains("Listening on")).count();
    assert_eq!(starts, 1, "{log}");
    assert!(log.contains("Web configuration reloaded"), "{log}");
}
