//! A schedule file drives the intensity: on the fake NVML GPU at constant power, the CO2e
//! counter must equal Σ ΔkWh × PUE × I(t) for the scripted timeline; bad files stop start-up
//! with exit 2, naming the file and the line.

use std::time::Duration;

use crate::carbon_mock::{intensity, rfc3339, scrape_until};
use crate::support::{fake_nvml_lib, now_unix, run_to_exit, temp_file, Exporter, Scrape};

const PUE: f64 = 1.25;

fn value(s: &Scrape, name: &str) -> f64 {
    s.value(name, &[("gpu", "0")])
}

#[test]
fn co2e_follows_a_scheduled_intensity_exactly() {
    let epoch = now_unix();
    let base = epoch.floor() + 2.0;
    let schedule = temp_file(
        "contract.csv",
        &format!(
            "# supplier's hourly figures\nfrom,grams_per_kwh\n{},200\n{},400\n{},300\n",
            rfc3339(base - 3_600.0),
            rfc3339(base + 3.0),
            rfc3339(base + 6.0)
        ),
    );
    let scenario = temp_file(
        "scenario.txt",
        &format!("epoch = {epoch}\n[gpu]\nuuid = GPU-5c4ed01e-0000-0000-0000-000000000000\npower = const:300\n"),
    );
    let exporter = Exporter::start(
        &[
            &format!("--nvml.library-path={}", fake_nvml_lib().display()),
            "--sample.interval=50ms",
            "--carbon.provider=schedule",
            &format!("--carbon.schedule.file={}", schedule.display()),
            &format!("--carbon.pue={PUE}"),
        ],
        &[("FAKE_NVML_SCENARIO", scenario.to_str().expect("utf-8 path"))],
    );
    exporter.wait_ready();
    let t = |s: &Scrape| s.value("gpu_carbon_exporter_last_sample_timestamp_seconds", &[]);
    let scrapes = scrape_until(&exporter, Duration::from_secs(30), |s| t(s) > base + 8.0);

    let seen: Vec<f64> = scrapes.iter().map(|s| intensity(s).4).collect();
    let mut steps = seen.clone();
    steps.dedup();
    assert_eq!(steps, [200.0, 400.0, 300.0], "{seen:?}");
    for s in &scrapes {
        let (provider, zone, signal, scope, _) = intensity(s);
        assert_eq!((provider.as_str(), zone.as_str()), ("schedule", "custom"));
        assert_eq!((signal.as_str(), scope.as_str()), ("average", "lifecycle"));
        assert_eq!(s.value("gpu_carbon_intensity_fallback", &[]), 0.0);
        let info = &[
            ("provider", "schedule"),
            ("source", "contract.csv"),
            ("zone", "custom"),
        ];
        assert_eq!(s.value("gpu_carbon_intensity_info", info), 1.0);
    }
    let at_400 = scrapes
        .iter()
        .find(|s| intensity(s).4 == 400.0)
        .expect("400");
    assert_eq!(
        at_400.value("gpu_carbon_intensity_last_update_timestamp_seconds", &[]),
        base + 3.0
    );

    // Between two scrapes with the same intensity, every gram is ΔkWh × PUE × I exactly;
    // across a switch it lies between the two values.
    for pair in scrapes.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        let kwh = value(b, "gpu_energy_kwh_total") - value(a, "gpu_energy_kwh_total");
        let grams = value(b, "gpu_co2e_grams_total") - value(a, "gpu_co2e_grams_total");
        let (ia, ib) = (intensity(a).4, intensity(b).4);
        if ia == ib {
            assert!(
                (grams - kwh * PUE * ia).abs() <= 1e-9 * grams.max(1e-9),
                "{grams} vs {}",
                kwh * PUE * ia
            );
        } else {
            let (lo, hi) = (ia.min(ib), ia.max(ib));
            assert!(
                grams >= kwh * PUE * lo * (1.0 - 1e-9) && grams <= kwh * PUE * hi * (1.0 + 1e-9)
            );
        }
    }

    // Over the whole run: ΔCO2e = PUE × P × ∫ I(t) dt, P constant (ΔkWh / Δt), within 1 %.
    let first = scrapes
        .iter()
        .find(|s| value(s, "gpu_energy_kwh_total") > 0.0)
        .expect("energy");
    let last = scrapes.last().expect("scrapes");
    let (ta, tb) = (t(first), t(last));
    assert!(ta < base + 3.0 && tb > base + 6.0, "{ta} {tb} {base}");
    let integral = 200.0 * (base + 3.0 - ta) + 400.0 * 3.0 + 300.0 * (tb - base - 6.0);
    let kwh = value(last, "gpu_energy_kwh_total") - value(first, "gpu_energy_kwh_total");
    let expected = PUE * kwh / (tb - ta) * integral;
    let grams = value(last, "gpu_co2e_grams_total") - value(first, "gpu_co2e_grams_total");
    eprintln!(
        "schedule: {grams:.6} g CO2e, expected {expected:.6} g ({:+.3} %)",
        (grams / expected - 1.0) * 100.0
    );
    assert!(
        (grams / expected - 1.0).abs() < 0.01,
        "{grams} vs {expected}"
    );
    crate::support::assert_promtool_clean(&last.text);
}

#[test]
fn a_bad_schedule_exits_2_naming_the_file_and_line() {
    let csv = temp_file("bad.csv", "hour,grams_per_kwh\n0,100\n25,200\n");
    let json = temp_file(
        "bad.json",
        "{\"weekly\": [\n  {\"weekday\": \"mon\", \"hour\": 0, \"grams_per_kwh\": 100},\n  {\"weekday\": \"noday\", \"hour\": 0, \"grams_per_kwh\": 100}\n]}\n",
    );
    for (file, line) in [
        (&csv, "line 3: hour 25"),
        (&json, "line 3: unknown weekday"),
    ] {
        let (status, out) = run_to_exit(
            &[
                "--demo",
                "--carbon.provider=schedule",
                &format!("--carbon.schedule.file={}", file.display()),
            ],
            &[],
        );
        assert_eq!(status.code(), Some(2), "{out}");
        assert!(out.contains("--carbon.schedule.file"), "{out}");
        assert!(out.contains(&format!("{} {line}", file.display())), "{out}");
    }
}

#[test]
fn embodied_emissions_are_amortised_per_gpu_apart_from_operational_co2e() {
    let exporter = Exporter::start(
        &[
            "--demo",
            "--sample.interval=100ms",
            "--embodied.kg-per-gpu=1000",
            "--embodied.lifetime-years=1",
        ],
        &[],
    );
    exporter.wait_ready();
    let t = |s: &Scrape| s.value("gpu_carbon_exporter_last_sample_timestamp_seconds", &[]);
    let a = exporter.scrape();
    std::thread::sleep(Duration::from_millis(1_500));
    let b = exporter.scrape();
    // 1,000 kg over 365.25 days: 0.0317 g per second.
    let rate = 1e6 / (365.25 * 86_400.0);
    for gpu in ["0", "1", "2", "3"] {
        let e = |s: &Scrape| s.value("gpu_embodied_co2e_grams_total", &[("gpu", gpu)]);
        let measured = (e(&b) - e(&a)) / (t(&b) - t(&a));
        assert!(
            (measured / rate - 1.0).abs() < 0.01,
            "gpu {gpu}: {measured} g/s, want {rate}"
        );
        assert_eq!(
            e(&b),
            b.value("gpu_embodied_co2e_grams_total", &[("gpu", "0")])
        );
    }
    assert_eq!(b.find("gpu_embodied_co2e_grams_total", &[]).len(), 4);
    crate::support::assert_promtool_clean(&b.text);
}

#[test]
fn embodied_totals_continue_across_a_restart_with_a_state_file() {
    let state = temp_file("placeholder", "").with_file_name("embodied-state.json");
    let state_flag = format!("--state.file={}", state.display());
    let args = [
        "--demo",
        "--sample.interval=100ms",
        "--embodied.kg-per-gpu=1000",
        "--embodied.lifetime-years=1",
        "--state.flush-interval=1s",
        &state_flag,
    ];
    let first = Exporter::start(&args, &[]);
    first.wait_ready();
    std::thread::sleep(Duration::from_millis(1_000));
    assert_eq!(first.terminate().code(), Some(0));
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state).expect("state")).expect("json");
    let saved_g = saved["devices"][0]["embodied_g"]
        .as_f64()
        .expect("embodied_g");
    assert!(saved_g > 0.0, "{saved}");

    let second = Exporter::start(&args, &[]);
    second.wait_ready();
    let s = second.scrape();
    let uuid = saved["devices"][0]["uuid"].as_str().expect("uuid");
    let now = s.value("gpu_embodied_co2e_grams_total", &[("uuid", uuid)]);
    // Continues from the saved value; the time it was down is not amortised.
    let rate = 1e6 / (365.25 * 86_400.0);
    assert!(
        now >= saved_g && now < saved_g + 5.0 * rate,
        "{now} vs saved {saved_g}"
    );
}

/// Excel's "CSV UTF-8": a byte order mark, CRLF, every field quoted; and a JSON file saved with
/// a byte order mark. Both are read as written.
#[test]
fn spreadsheet_csv_and_json_with_a_byte_order_mark_are_read() {
    let excel = temp_file(
        "excel.csv",
        "\u{feff}\"hour\",\"grams_per_kwh\"\r\n\"0\",\"123.5\"\r\n",
    );
    let json = temp_file(
        "bom.json",
        "\u{feff}{\"hourly\": [{\"hour\": 0, \"grams_per_kwh\": 234}]}\n",
    );
    for (file, want) in [(excel, 123.5), (json, 234.0)] {
        let e = Exporter::start(
            &[
                "--demo",
                "--carbon.provider=schedule",
                &format!("--carbon.schedule.file={}", file.display()),
            ],
            &[],
        );
        e.wait_ready();
        let s = e.scrape();
        assert_eq!(intensity(&s).4, want, "{}", file.display());
        assert_eq!(intensity(&s).0, "schedule");
    }
}
