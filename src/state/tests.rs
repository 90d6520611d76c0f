//! The state file's format: round trip, and refusal of files that can't be totals.

use super::*;

pub(super) fn device() -> SavedDevice {
    SavedDevice {
        uuid: "GPU-1".into(),
        kind: DeviceKind::Gpu,
        index: 0,
        name: "NVIDIA H100 80GB HBM3".into(),
        caps: Capabilities {
            energy_counter: true,
            power: true,
            utilization: true,
            power_limit: true,
        },
        energy_source: SourceKind::Counter,
        energy_j: 3.6e6,
        idle_energy_j: 1.0e5,
        co2e_g: 480.0,
        hardware_resets: 1,
        counter: Some(CounterMark {
            uj: 123,
            at_unix: 1_800_000_000.5,
            wraps_at_uj: None,
        }),
        last_seen_unix: 1_800_000_000.5,
        embodied_g: Some(12.5),
        created_unix: Some(1_799_000_000.0),
    }
}

pub(super) fn attribution() -> SavedAttribution {
    SavedAttribution {
        labels: vec!["pod".into(), "user".into()],
        workloads: vec![SavedWorkload {
            uuid: "GPU-1".into(),
            gpu: 0,
            labels: vec!["train-0".into(), "alice".into()],
            energy_j: 3.0e6,
            co2e_g: 400.0,
            last_active_unix: 1_800_000_000.5,
            created_unix: Some(1_799_999_000.0),
        }],
        unattributed: vec![SavedUnattributed {
            uuid: "GPU-1".into(),
            gpu: 0,
            energy_j: 0.6e6,
            co2e_g: 80.0,
        }],
    }
}

#[test]
fn files_without_attribution_still_load() {
    let text = r#"{"version": 1, "written_at_unix": 0, "devices": []}"#;
    assert_eq!(StateFile::parse(text).expect("old file").attribution, None);
}

#[test]
fn workload_totals_round_trip_and_are_checked() {
    let a = attribution();
    let snap = a.to_snapshot();
    assert_eq!(snap.labels, ["pod", "user"]);
    assert_eq!(snap.workloads[0].energy.0, 3.0e6);
    assert_eq!(snap.unattributed[0].co2e.0, 80.0);
    let mut bad = attribution();
    bad.workloads[0].co2e_g = f64::NAN;
    let file = StateFile {
        version: VERSION,
        written_at_unix: 0.0,
        seq: 0,
        devices: vec![],
        attribution: Some(bad),
        mig: Vec::new(),
    };
    assert!(file.to_json().is_err(), "a NaN total is never written");
    let text = serde_json::to_string(&file).expect("json");
    assert!(StateFile::parse(&text).is_err());
}

#[test]
fn round_trip() {
    let file = StateFile {
        version: VERSION,
        written_at_unix: 1_800_000_001.0,
        seq: 0,
        devices: vec![device()],
        attribution: Some(attribution()),
        mig: Vec::new(),
    };
    assert_eq!(
        StateFile::parse(&file.to_json().expect("valid state")).expect("parse"),
        file
    );
    let retained = file.devices[0].retained_snapshot();
    assert!(!retained.up);
    assert_eq!(retained.totals.energy.kwh(), 1.0);
    assert_eq!(retained.energy_source.as_str(), "counter");
    assert_eq!(retained.embodied, Some(Grams(12.5)));
    // Files written before embodied emissions existed still load.
    let mut value: serde_json::Value =
        serde_json::from_str(&file.to_json().expect("valid state")).expect("json");
    value["devices"][0]
        .as_object_mut()
        .expect("object")
        .remove("embodied_g");
    let old = value.to_string();
    assert_eq!(
        StateFile::parse(&old).expect("parse").devices[0].embodied_g,
        None
    );
}

#[test]
fn refusals_say_where_and_why() {
    let err =
        StateFile::parse("{\n  \"version\": 1,\n  \"oops\": 2\n}").expect_err("unknown field");
    assert!(err.to_string().starts_with("line 3"), "{err}");
    let err = StateFile::parse(r#"{"version": 9, "written_at_unix": 0, "devices": []}"#)
        .expect_err("version");
    assert!(err.to_string().contains("version 9"), "{err}");
    let mut d = device();
    d.energy_j = -1.0;
    let file = StateFile {
        version: VERSION,
        written_at_unix: 0.0,
        seq: 0,
        devices: vec![d],
        attribution: None,
        mig: Vec::new(),
    };
    let err = file
        .to_json()
        .expect_err("a negative total is never written");
    assert!(err.to_string().contains("energy_j"), "{err}");
    let text = serde_json::to_string(&file).expect("json");
    let err = StateFile::parse(&text).expect_err("negative");
    assert!(err.to_string().contains("energy_j"), "{err}");
    assert!(StateFile::parse("").is_err());
}
