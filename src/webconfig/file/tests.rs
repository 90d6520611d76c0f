use super::*;

fn parse_at(text: &str) -> Result<WebConfig, WebConfigError> {
    parse(text, Path::new("/etc/gce/web.yml"))
}

fn hash() -> String {
    bcrypt::hash("secret", 4).expect("hash")
}

/// An empty file is refused (the toolkit would read it as "no TLS, no users"); an explicit
/// empty mapping still configures nothing.
#[test]
fn empty_file_is_refused() {
    for text in ["", "# nothing\n", "---\n", "\n\n# a\n# b\n", "~\n"] {
        let err = parse_at(text).expect_err(text);
        assert!(err.reason.contains("empty"), "{text:?}: {err}");
        assert!(err.to_string().contains("--web.config.file"), "{err}");
    }
    assert_eq!(parse_at("{}").expect("{}"), WebConfig::default());
}

/// What `promtool check web-config` refuses is refused here too, at load rather than at the
/// first login: a key given twice, a bcrypt cost outside 4-31, a hash that can't verify.
#[test]
fn duplicate_keys_and_unusable_hashes_are_refused() {
    let h = hash();
    let cost = |c: &str| h.replacen("$04$", &format!("${c}$"), 1);
    let cases: Vec<(String, usize, &str)> = vec![
        (format!("basic_auth_users:\n  alice: {h}\n  alice: {h}\n"), 3, "duplicate key \"alice\""),
        (format!("basic_auth_users:\n  alice: {h}\nbasic_auth_users:\n  bob: {h}\n"), 3, "duplicate field `basic_auth_users`"),
        ("http_server_config:\n  headers:\n    X-Frame-Options: deny\n    X-Frame-Options: sameorigin\n".into(), 4, "duplicate key"),
        ("tls_server_config:\n  cert_file: a\n  cert_file: b\n  key_file: c\n".into(), 3, "duplicate field `cert_file`"),
        (format!("basic_auth_users:\n  alice: {}\n", cost("03")), 2, "cost 3, outside the allowed range 4-31"),
        (format!("basic_auth_users:\n  alice: {}\n", cost("32")), 2, "cost 32, outside"),
        (format!("basic_auth_users:\n  alice: {}\n", cost("99")), 2, "cost 99, outside"),
        (format!("basic_auth_users:\n  alice: {}\n", h.replacen("$2b$", "$2z$", 1)), 2, "not a bcrypt hash"),
        (format!("basic_auth_users:\n  alice: {}\n", &h[..59]), 2, "not a bcrypt hash"),
        ("basic_auth_users:\n  alice: ''\n".into(), 2, "not a bcrypt hash"),
    ];
    for (text, line, reason) in cases {
        let err = parse_at(&text).expect_err(&text);
        assert!(err.reason.contains(reason), "{text}\n→ {err}");
        assert_eq!(err.line, Some(line), "{text}\n→ {err}");
    }
    for c in ["04", "10", "31"] {
        let text = format!("basic_auth_users:\n  alice: {}\n", cost(c));
        assert!(parse_at(&text).is_ok(), "cost {c} is allowed");
    }
}

#[test]
fn full_file_with_relative_paths_resolved_against_its_directory() {
    let text = format!(
        "tls_server_config:
  cert_file: server.crt
  key_file: /abs/server.key
  client_auth_type: RequireAndVerifyClientCert
  client_ca_file: ca.crt
  min_version: TLS13
  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256]
  curve_preferences: [X25519]
  prefer_server_cipher_suites: false
http_server_config:
  http2: false
  headers:
    X-Frame-Options: deny
    Strict-Transport-Security: max-age=31536000
    X-XSS-Protection: ''
basic_auth_users:
  prometheus: {}
rate_limit:
  interval: 100ms
  burst: 5
",
        hash()
    );
    let c = parse_at(&text).expect("valid");
    let tls = c.tls.expect("tls");
    assert_eq!(tls.cert, Pem::File("/etc/gce/server.crt".into()));
    assert_eq!(tls.key, Pem::File("/abs/server.key".into()));
    assert_eq!(tls.client_ca, Some(Pem::File("/etc/gce/ca.crt".into())));
    assert_eq!(tls.client_auth, ClientAuth::RequireAndVerifyClientCert);
    assert_eq!(
        (tls.min_version, tls.max_version),
        (TlsVersion::Tls13, TlsVersion::Tls13)
    );
    assert!(!tls.prefer_server_cipher_suites);
    assert_eq!(c.users.keys().collect::<Vec<_>>(), ["prometheus"]);
    let names: Vec<&str> = c.headers.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["strict-transport-security", "x-frame-options"],
        "blank values are left out"
    );
    assert_eq!(
        c.rate_limit,
        Some(RateLimit {
            interval: Duration::from_millis(100),
            burst: 5
        })
    );
}

#[test]
fn inline_pem_and_defaults() {
    let c = parse_at("tls_server_config:\n  cert: |\n    -----BEGIN CERTIFICATE-----\n  key: k\n")
        .expect("valid");
    let tls = c.tls.expect("tls");
    assert!(matches!(tls.cert, Pem::Inline(ref s) if s.starts_with("-----BEGIN")));
    assert_eq!(tls.client_auth, ClientAuth::NoClientCert);
    assert_eq!(
        (tls.min_version, tls.max_version),
        (TlsVersion::Tls12, TlsVersion::Tls13)
    );
    assert!(tls.prefer_server_cipher_suites);
}

/// Each bad file names the line and says why.
#[test]
fn errors_name_line_and_reason() {
    let h = hash();
    let cases: Vec<(String, usize, &str)> = vec![
        ("tls_server_config:\n  cert_file: a\n  key_fil: b\n".into(), 3, "unknown field `key_fil`"),
        ("basic_auth_users:\n  alice: {}\nextra: 1\n".replace("{}", &h), 3, "unknown field `extra`"),
        ("tls_server_config:\n  cert_file: [a\n".into(), 2, "invalid type: sequence"),
        ("tls_server_config:\n  cert_file: a\n\tkey_file: b\n".into(), 3, "tab"),
        ("tls_server_config:\n  cert_file: a\n".into(), 1, "missing one of key or key_file"),
        ("tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: TLS11\n".into(), 4, "TLS11 is not supported"),
        ("tls_server_config:\n  cert_file: a\n  key_file: b\n  max_version: SSL3\n".into(), 4, "unknown TLS version"),
        ("tls_server_config:\n  cert_file: a\n  key_file: b\n  min_version: TLS13\n  max_version: TLS12\n".into(), 4, "above max_version"),
        ("tls_server_config:\n  cert_file: a\n  key_file: b\n  client_ca_file: c\n".into(), 4, "without a client_auth_type"),
        ("tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: RequireAndVerifyClientCert\n".into(), 4, "neither client_ca_file"),
        ("tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: Maybe\n".into(), 4, "invalid client_auth_type"),
        ("tls_server_config:\n  cert: x\n  cert_file: a\n  key_file: b\n".into(), 3, "not both"),
        ("basic_auth_users:\n  alice: plaintext\n".into(), 2, "not a bcrypt hash"),
        ("basic_auth_users:\n  'a:b': {}\n".replace("{}", &h), 2, "can't contain ':'"),
        ("http_server_config:\n  headers:\n    Content-Type: text/html\n".into(), 3, "can not be configured"),
        ("http_server_config:\n  headers:\n    x-frame-options: deny\n".into(), 3, "can not be configured"),
        ("http_server_config:\n  headers:\n    X-Frame-Options: allow\n".into(), 3, "expected one of"),
        ("http_server_config:\n  headers:\n    X-Content-Type-Options: ''\n".into(), 3, "expected one of"),
        ("http_server_config:\n  headers:\n    X-XSS-Protection: \"a\\nb\"\n".into(), 3, "not a valid header value"),
        ("rate_limit:\n  interval: soon\n  burst: 1\n".into(), 2, "rate_limit interval"),
        ("rate_limit:\n  interval: 1s\n  burst: 0\n".into(), 3, "at least 1"),
        ("tls_server_config:\n  cert_file: a\n  key_file: b\n  client_auth_type: RequireAnyClientCert\n  client_allowed_sans: [x]\n".into(), 5, "not supported"),
        ("- a\n- b\n".into(), 1, "invalid type"),
    ];
    for (text, line, reason) in cases {
        let err = parse_at(&text).expect_err(&text);
        assert_eq!(err.line, Some(line), "{text}\n→ {err}");
        assert!(err.reason.contains(reason), "{text}\n→ {err}");
        assert!(
            err.to_string()
                .starts_with(&format!("/etc/gce/web.yml:{line}: ")),
            "{err}"
        );
        assert!(
            !err.reason.contains(" at line "),
            "line reported once: {err}"
        );
    }
}

#[test]
fn oversized_file_is_refused_before_parsing() {
    let text = format!("# {}\n", "x".repeat(MAX_FILE_BYTES));
    let err = parse_at(&text).expect_err("too big");
    assert!(err.reason.contains("larger than"), "{err}");
}

#[test]
fn debug_output_hides_hashes() {
    let c = parse_at(&format!("basic_auth_users:\n  alice: {}\n", hash())).expect("valid");
    let shown = format!("{c:?}");
    assert!(shown.contains("alice") && !shown.contains("$2"), "{shown}");
}

#[test]
fn yaml_line_breaks_are_counted_like_the_parser_counts_them() {
    let lines: Vec<&str> = yaml_lines("a\nb\r\nc\rd\u{85}e\u{2028}f\u{2029}g\n").collect();
    assert_eq!(lines, ["a", "b", "c", "d", "e", "f", "g"]);
    assert_eq!(yaml_lines("").count(), 0);
    assert_eq!(yaml_lines("x").collect::<Vec<_>>(), ["x"]);
}

/// Regression (fuzzing, fuzz/corpus/web_config/regress-cr-line-breaks.yml): with lone CR line
/// breaks the parser reported a line past the end of the text as `str::lines` counts it.
#[test]
fn lone_cr_line_breaks_give_lines_inside_the_file() {
    let text = "# comment\r\r\ra: &a [*a\r\r-\r";
    let err = parse_at(text).expect_err("not a mapping");
    let line = err.line.expect("line");
    assert!(line >= 1 && line <= yaml_lines(text).count() + 1, "{err}");
    let err = parse_at("tls_server_config:\r  cert_file: a\r  key_file: b\r  min_version: TLS11\r")
        .expect_err("TLS11");
    assert_eq!(err.line, Some(4), "{err}");
}

/// Alias bombs ("billion laughs") are refused without being expanded: the strict schema fails
/// at the first aliased node that doesn't fit, and serde_yaml_ng bounds expansion anyway.
#[test]
fn alias_bombs_are_refused() {
    let mut text =
        "tls_server_config:\n  cipher_suites: &a0 [x, x, x, x, x, x, x, x]\n".to_string();
    text.push_str("  curve_preferences: &a1 [*a0, *a0, *a0, *a0, *a0, *a0, *a0, *a0]\n");
    text.push_str("basic_auth_users:\n");
    for i in 2..12 {
        let p = i - 1;
        text.push_str(&format!(
            "  u{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    let started = std::time::Instant::now();
    let err = parse_at(&text).expect_err("bomb");
    assert!(err.reason.contains("invalid type"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
}
