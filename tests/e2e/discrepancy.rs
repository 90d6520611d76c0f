//! `gpu_energy_discrepancy_ratio` on the real binary over the fake NVML: a counter that
//! advances 1.5 times as fast as the power readings say reads +0.5; an exact one reads 0; a GPU
//! without a counter has no such series.

use std::time::Duration;

use crate::support::{fake_nvml_lib, now_unix, temp_file, Exporter, Scrape};

const RATIO: &str = "gpu_energy_discrepancy_ratio";

/// GPU 0 reads 250 W while its counter counts 375 J a second: 375 / 250 − 1 = 0.5. GPU 1's
/// counter is the exact integral of a linear ramp (instantaneous readings, so the trapezoid
/// is exact too): 0. GPU 2 has no counter.
pub fn scenario(epoch: f64) -> String {
    format!(
        "epoch = {epoch}
[gpu]
uuid = GPU-5ca1ed00-0000-0000-0000-000000000000
power = const:250
counter_scale = 1.5
[gpu]
uuid = GPU-e8ac7000-0000-0000-0000-000000000001
power = trace:0=100,60=400
[gpu]
uuid = GPU-0c0c0000-0000-0000-0000-000000000002
power = const:120
counter = no
"
    )
}

#[test]
fn the_ratio_shows_a_counter_at_the_wrong_rate_and_zero_for_a_good_one() {
    let file = temp_file("scenario.txt", &scenario(now_unix()));
    let lib = fake_nvml_lib();
    let exporter = Exporter::start(
        &[
            &format!("--nvml.library-path={}", lib.display()),
            "--sample.interval=100ms",
        ],
        &[("FAKE_NVML_SCENARIO", file.to_str().expect("utf-8 path"))],
    );
    exporter.wait_ready();
    // About 3 s of 100 ms intervals, so that a millisecond's jitter between the exporter's
    // tick times and the fake's read times is lost in the sum.
    std::thread::sleep(Duration::from_secs(3));
    let scrape = exporter.scrape();
    let ratio = |gpu: &str| -> f64 { scrape.value(RATIO, &[("gpu", gpu)]) };
    let (fast, exact) = (ratio("0"), ratio("1"));
    assert!((fast - 0.5).abs() < 1e-3, "GPU 0: {fast}\n{}", scrape.text);
    assert!(exact.abs() < 1e-3, "GPU 1: {exact}\n{}", scrape.text);
    assert!(scrape.find(RATIO, &[("gpu", "2")]).is_empty());
    assert_documented(&scrape);
}

/// The exposition's HELP states the formula and window, as docs/metrics.md does.
fn assert_documented(scrape: &Scrape) {
    let help = scrape
        .text
        .lines()
        .find(|l| l.starts_with(&format!("# HELP {RATIO} ")))
        .expect("HELP line");
    assert!(
        help.contains("last 5 minutes") && help.contains("- 1"),
        "{help}"
    );
    let docs = crate::support::read_path(&crate::support::repo("docs/metrics.md"));
    assert!(docs.contains(RATIO), "docs/metrics.md lacks {RATIO}");
}
