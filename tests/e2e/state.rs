//! The persistent ledger (`--state.file`) through restarts, kill -9, corrupt files, an
//! unwritable directory and GPUs that are gone — the real binary on the fake NVML library.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::support::{fake_nvml_lib, now_unix, temp_file, Exporter, Scrape};

const J_PER_KWH: f64 = 3.6e6;

/// GPU 0 has an energy counter, GPU 1 only a power reading; both draw a constant 300 W.
fn scenario() -> PathBuf {
    temp_file(
        "scenario.txt",
        &format!(
            "epoch = {}\n[gpu]\nuuid = GPU-counter\npower = const:300\n\
             [gpu]\nuuid = GPU-integrated\npower = const:300\ncounter = no\n",
            now_unix()
        ),
    )
}

fn start(scenario: &Path, state: &Path, extra: &[&str]) -> Exporter {
    let lib = format!("--nvml.library-path={}", fake_nvml_lib().display());
    let state = format!("--state.file={}", state.display());
    let mut args = vec![
        lib.as_str(),
        state.as_str(),
        "--sample.interval=100ms",
        "--state.flush-interval=1s",
        // The GPUs' ledger is the subject; host domains have their own restart test.
        "--no-collector.host-estimate",
    ];
    args.extend_from_slice(extra);
    let e = Exporter::start(
        &args,
        &[("FAKE_NVML_SCENARIO", scenario.to_str().expect("utf-8"))],
    );
    e.wait_ready();
    e
}

fn ts(s: &Scrape) -> f64 {
    s.value("gpu_carbon_exporter_last_sample_timestamp_seconds", &[])
}

fn joules(s: &Scrape, uuid: &str) -> f64 {
    s.value("gpu_energy_kwh_total", &[("uuid", uuid)]) * J_PER_KWH
}

/// Waits until a scrape satisfies `done`.
fn scrape_until(e: &Exporter, done: impl Fn(&Scrape) -> bool) -> Scrape {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let s = e.scrape();
        if done(&s) || Instant::now() > deadline {
            return s;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn state_path() -> PathBuf {
    temp_file("placeholder", "").with_file_name("state.json")
}

/// Kill -9, one second down, restart: the counter GPU's energy is exact over the whole span,
/// downtime included (the saved raw counter is compared with the first new reading); the
/// integrated GPU loses at most the downtime plus one sample interval and never counts twice.
#[test]
fn kill_9_and_restart_lose_nothing_the_counter_saw_and_count_nothing_twice() {
    let scenario = scenario();
    let state = state_path();
    let mut first = start(&scenario, &state, &[]);
    let a = scrape_until(&first, |s| joules(s, "GPU-integrated") > 0.0);
    // Let at least one flush happen, then kill without a chance to save.
    let b = scrape_until(&first, |s| {
        s.value("gpu_carbon_exporter_state_writes_total", &[]) >= 2.0
    });
    first.child.kill().expect("kill -9");
    let _ = first.child.wait();
    let killed_at = now_unix();
    assert!(state.exists(), "the state file was written before the kill");
    std::thread::sleep(Duration::from_millis(1000));

    let second = start(&scenario, &state, &[]);
    let c = scrape_until(&second, |s| ts(s) > killed_at + 1.5);
    assert_eq!(
        c.value("gpu_carbon_exporter_state_restored_devices", &[]),
        2.0
    );

    let span = ts(&c) - ts(&a);
    let counter = joules(&c, "GPU-counter") - joules(&a, "GPU-counter");
    let want = 300.0 * span;
    assert!(
        (counter - want).abs() < 0.01 * want,
        "counter GPU: {counter} J over {span} s, want {want}"
    );

    let integrated = joules(&c, "GPU-integrated") - joules(&a, "GPU-integrated");
    let lost_at_most = 300.0 * (1.0 + (ts(&c) - ts(&b)) + 0.5);
    assert!(
        integrated <= want * 1.01,
        "integrated GPU counted twice: {integrated} > {want}"
    );
    assert!(
        integrated >= want - lost_at_most,
        "integrated GPU lost too much: {integrated} of {want}"
    );
    assert_eq!(second.terminate().code(), Some(0));
}

/// A clean restart continues every counter; CO2e and idle energy too.
#[test]
fn sigterm_saves_and_the_next_start_continues() {
    let scenario = scenario();
    let state = state_path();
    let first = start(&scenario, &state, &["--carbon.intensity=200"]);
    let a = scrape_until(&first, |s| joules(s, "GPU-counter") > 300.0);
    assert_eq!(first.terminate().code(), Some(0));
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state).expect("state")).expect("json");
    let saved_j = saved["devices"][0]["energy_j"].as_f64().expect("energy_j");
    assert!(
        saved_j >= joules(&a, "GPU-counter"),
        "the final write has the last tick"
    );

    let second = start(&scenario, &state, &["--carbon.intensity=200"]);
    let b = second.scrape();
    assert!(
        joules(&b, "GPU-counter") >= saved_j,
        "continues from the saved total"
    );
    let co2 = b.value("gpu_co2e_grams_total", &[("uuid", "GPU-counter")]);
    assert!(
        co2 >= saved_j / J_PER_KWH * 200.0 * 0.999,
        "CO2e continues too: {co2}"
    );
    crate::support::assert_promtool_clean(&b.text);
}

#[test]
fn a_corrupt_state_file_is_set_aside_not_lost() {
    let scenario = scenario();
    let state = state_path();
    std::fs::write(&state, "{\"version\": 1, \"devices\": [tru").expect("write");
    let e = start(&scenario, &state, &[]);
    let s = scrape_until(&e, |s| {
        s.value("gpu_carbon_exporter_state_writes_total", &[]) >= 1.0
    });
    assert_eq!(
        s.value("gpu_carbon_exporter_state_set_aside_total", &[]),
        1.0
    );
    assert_eq!(s.value("gpu_carbon_exporter_state_persisting", &[]), 1.0);
    let dir = state.parent().expect("dir");
    let aside: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("ls")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().contains("state.json.corrupt-"))
        .collect();
    assert_eq!(aside.len(), 1, "moved aside next to the state file");
    assert_eq!(
        std::fs::read_to_string(&aside[0]).expect("read"),
        "{\"version\": 1, \"devices\": [tru"
    );
    assert!(e.log().contains("set aside"), "{}", e.log());
}

/// The directory of the ledger vanishes: commits fail and are counted, power stays live, and
/// the counters are held at their last durable values (never served above what the ledger
/// holds). When the directory is back, the counters catch up with nothing lost.
#[test]
fn an_unwritable_state_directory_holds_the_counters_and_loses_nothing() {
    let scenario = scenario();
    let dir = state_path().with_file_name("vanishing");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let state = dir.join("state.json");
    let e = start(&scenario, &state, &[]);
    let a = scrape_until(&e, |s| {
        s.value("gpu_carbon_exporter_state_writes_total", &[]) >= 1.0
            && joules(s, "GPU-counter") > 0.0
    });
    std::fs::remove_dir_all(&dir).expect("rm");
    let held = scrape_until(&e, |s| {
        s.value("gpu_carbon_exporter_state_counters_held", &[]) == 1.0
    });
    std::thread::sleep(Duration::from_millis(1000));
    let still = e.scrape();
    assert!(still.value("gpu_carbon_exporter_state_write_failures_total", &[]) >= 5.0);
    assert_eq!(
        still.value("gpu_up", &[("uuid", "GPU-counter")]),
        1.0,
        "sampling goes on"
    );
    assert_eq!(
        still.value("gpu_power_watts", &[("uuid", "GPU-counter")]),
        300.0,
        "gauges stay live"
    );
    assert!(ts(&still) > ts(&held) + 0.5, "snapshots stay fresh");
    for uuid in ["GPU-counter", "GPU-integrated"] {
        assert_eq!(
            joules(&still, uuid),
            joules(&held, uuid),
            "{uuid}: held while nothing can be saved"
        );
    }

    std::fs::create_dir_all(&dir).expect("mkdir again");
    let back = scrape_until(&e, |s| {
        s.value("gpu_carbon_exporter_state_counters_held", &[]) == 0.0
    });
    assert!(state.exists(), "writes resume once the directory is back");
    let span = ts(&back) - ts(&a);
    let want = 300.0 * span;
    for uuid in ["GPU-counter", "GPU-integrated"] {
        let got = joules(&back, uuid) - joules(&a, uuid);
        assert!(
            (got - want).abs() < 0.01 * want,
            "{uuid}: caught up to {got} J of {want} J over {span} s"
        );
    }
    assert!(
        e.log().contains("Cannot write the state file") && e.log().contains("caught up"),
        "{}",
        e.log()
    );
}

/// A GPU in the state file that is not found any more stays exported, down, with its totals,
/// until the retention ends; one last seen beyond the retention is dropped.
#[test]
fn gone_gpus_are_retained_for_the_retention_period() {
    let scenario = scenario();
    let state = state_path();
    let now = now_unix();
    let gone = |uuid: &str, last_seen: f64| {
        serde_json::json!({
            "uuid": uuid, "kind": "gpu", "index": 7, "name": "NVIDIA A100-SXM4-80GB",
            "caps": {"energy_counter": true, "power": true, "utilization": true, "power_limit": true},
            "energy_source": "counter", "energy_j": 7.2e6, "idle_energy_j": 3.6e6, "co2e_g": 900.0,
            "hardware_resets": 0, "counter": null, "last_seen_unix": last_seen
        })
    };
    let file = serde_json::json!({
        "version": 1, "written_at_unix": now,
        "devices": [gone("GPU-recently-gone", now - 3600.0), gone("GPU-long-gone", now - 40.0 * 86400.0)]
    });
    std::fs::write(&state, file.to_string()).expect("write");
    let e = start(&scenario, &state, &["--state.retention=7d"]);
    let s = e.scrape();
    let kept = [("uuid", "GPU-recently-gone")];
    assert_eq!(s.value("gpu_up", &kept), 0.0);
    assert_eq!(s.value("gpu_energy_kwh_total", &kept), 2.0);
    assert_eq!(s.value("gpu_idle_energy_kwh_total", &kept), 1.0);
    assert_eq!(s.value("gpu_co2e_grams_total", &kept), 900.0);
    assert_eq!(
        s.find("gpu_info", &[("uuid", "GPU-recently-gone"), ("gpu", "7")])
            .len(),
        1
    );
    assert!(
        s.find("gpu_up", &[("uuid", "GPU-long-gone")]).is_empty(),
        "past retention"
    );
    assert!(
        s.find("gpu_power_watts", &kept).is_empty(),
        "no live readings for a gone GPU"
    );
    // It is saved again, so it survives further restarts within its retention.
    scrape_until(&e, |s| {
        s.value("gpu_carbon_exporter_state_writes_total", &[]) >= 1.0
    });
    let text = std::fs::read_to_string(&state).expect("state");
    assert!(text.contains("GPU-recently-gone") && !text.contains("GPU-long-gone"));
}
