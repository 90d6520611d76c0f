//! Tests of the parent module.

use super::*;
use crate::carbon::embodied::Amortisation;
use crate::carbon::providers::ukgrid::Target;
use crate::config::Config;
use clap::Parser;

fn config(args: &[&str], env: &[(&str, &str)]) -> Result<Settings, ConfigError> {
    let cli = Cli::try_parse_from(
        ["gpu-carbon-exporter", "--demo"]
            .into_iter()
            .chain(args.iter().copied()),
    )
    .expect("flags parse");
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let lookup = move |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    Config::from_cli_env(cli, &lookup).map(|c| c.carbon)
}

fn temp(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("carbon-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    path
}

#[test]
fn electricitymaps_with_token_from_env_and_fallback_zone() {
    let c = config(
        &[
            "--carbon.provider=electricitymaps",
            "--carbon.electricitymaps.zone=US-CAL-CISO",
            "--carbon.fallback-zone=us",
            "--carbon.refresh-interval=1m",
            "--carbon.scope=direct",
        ],
        &[(electricitymaps::TOKEN_ENV, "tok\n")],
    )
    .expect("valid");
    let ProviderSettings::ElectricityMaps(s) = &c.provider else {
        panic!("{:?}", c.provider)
    };
    assert_eq!(
        (s.url.as_str(), s.zone.as_str()),
        (electricitymaps::DEFAULT_URL, "US-CAL-CISO")
    );
    assert_eq!((s.token.expose(), s.scope), ("tok", Scope::Direct));
    assert_eq!(c.static_value.intensity().zone, "US");
    assert_eq!(c.refresh, Some(Duration::from_secs(60)));
    assert!(
        !format!("{c:?}").contains("tok\""),
        "the token must not appear in Debug"
    );
}

#[test]
fn watttime_credentials_from_files() {
    let user = temp("user", "alice\n");
    let pass = temp("pass", "s3cret\n");
    let c = config(
        &[
            "--carbon.provider=watttime",
            "--carbon.watttime.region=CAISO_NORTH",
            "--carbon.watttime.url=http://127.0.0.1:9/",
            &format!("--carbon.watttime.username-file={}", user.display()),
            &format!("--carbon.watttime.password-file={}", pass.display()),
        ],
        &[],
    )
    .expect("valid");
    let ProviderSettings::WattTime(s) = &c.provider else {
        panic!("{:?}", c.provider)
    };
    assert_eq!(
        (s.username.expose(), s.password.expose()),
        ("alice", "s3cret")
    );
    assert_eq!(
        (s.url.as_str(), s.signal_type),
        ("http://127.0.0.1:9", SignalType::Moer)
    );
    assert!(c.is_default);
}

#[test]
fn ukgrid_targets() {
    let target = |args: &[&str]| match config(args, &[]).expect("valid").provider {
        ProviderSettings::UkGrid { target, .. } => target,
        other => panic!("{other:?}"),
    };
    assert_eq!(target(&["--carbon.provider=ukgrid"]), Target::National);
    assert_eq!(
        target(&["--carbon.provider=ukgrid", "--carbon.ukgrid.region=13"]),
        Target::Region(13)
    );
    assert_eq!(
        target(&[
            "--carbon.provider=ukgrid",
            "--carbon.ukgrid.postcode=rg10 9xx"
        ]),
        Target::Postcode("RG10".into())
    );
}

#[test]
fn schedule_and_embodied() {
    let file = temp("s.csv", "hour,grams_per_kwh\n0,100\n");
    let c = config(
        &[
            "--carbon.provider=schedule",
            &format!("--carbon.schedule.file={}", file.display()),
            "--carbon.schedule.utc-offset=-05:00",
            "--embodied.kg-per-gpu=150",
            "--embodied.lifetime-years=4",
        ],
        &[],
    )
    .expect("valid");
    let ProviderSettings::Schedule(s) = &c.provider else {
        panic!("{:?}", c.provider)
    };
    assert_eq!((s.name.as_str(), s.utc_offset), ("s.csv", -18_000));
    assert_eq!(c.embodied, Some(Amortisation::new(150.0, 4.0)));
}

#[test]
fn each_bad_value_names_its_flag() {
    let bad_schedule = temp("bad.csv", "hour,grams_per_kwh\n0,100\n0,200\n");
    let bad = format!("--carbon.schedule.file={}", bad_schedule.display());
    let em = [
        "--carbon.provider=electricitymaps",
        "--carbon.electricitymaps.zone=DE",
    ];
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["--carbon.provider=electricitymaps"],
            "carbon.electricitymaps.zone",
        ),
        (em.to_vec(), "carbon.electricitymaps.token-file"),
        (
            vec![
                "--carbon.provider=electricitymaps",
                "--carbon.electricitymaps.zone=DE&x",
            ],
            "carbon.electricitymaps.zone",
        ),
        (
            vec![em[0], em[1], "--carbon.electricitymaps.url=ftp://x"],
            "carbon.electricitymaps.url",
        ),
        (vec![em[0], em[1], "--carbon.zone=DE"], "carbon.zone"),
        (
            vec![em[0], em[1], "--carbon.fallback-zone=XX"],
            "carbon.fallback-zone",
        ),
        (vec!["--carbon.fallback-zone=DE"], "carbon.fallback-zone"),
        (
            vec!["--carbon.electricitymaps.zone=DE"],
            "carbon.electricitymaps.zone",
        ),
        (
            vec!["--carbon.provider=watttime", "--carbon.watttime.region=X"],
            "carbon.watttime.username-file",
        ),
        (
            vec!["--carbon.provider=ukgrid", "--carbon.ukgrid.region=18"],
            "carbon.ukgrid.region",
        ),
        (
            vec!["--carbon.provider=ukgrid", "--carbon.ukgrid.postcode=R"],
            "carbon.ukgrid.postcode",
        ),
        (vec!["--carbon.provider=schedule"], "carbon.schedule.file"),
        (
            vec!["--carbon.provider=schedule", &bad],
            "carbon.schedule.file",
        ),
        (vec!["--carbon.max-age=0"], "carbon.max-age"),
        (
            vec!["--carbon.refresh-interval=10ms"],
            "carbon.refresh-interval",
        ),
        (vec!["--carbon.http-timeout=1h"], "carbon.http-timeout"),
        (vec!["--embodied.kg-per-gpu=-1"], "embodied.kg-per-gpu"),
        (
            vec!["--embodied.lifetime-years=3"],
            "embodied.lifetime-years",
        ),
        (
            vec!["--embodied.kg-per-gpu=100", "--embodied.lifetime-years=0"],
            "embodied.lifetime-years",
        ),
    ];
    for (args, flag) in cases {
        let err = config(&args, &[]).expect_err(flag);
        assert_eq!(err.flag, flag, "{args:?}: {err}");
        assert!(err.to_string().contains(&format!("--{flag}")), "{err}");
    }
    let err = config(&["--carbon.provider=schedule", &bad], &[]).expect_err("bad file");
    assert!(err.to_string().contains("bad.csv line 3"), "{err}");
}
