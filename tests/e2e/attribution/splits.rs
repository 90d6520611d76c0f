//! Splits at any `--sample.interval`: NVML's per-process samples come once a second
//! (`process_sample_period = 1` in the fake), and ticks between them reuse the latest shares,
//! so a 50 % and a 5 % SM share get 50/55 and 5/55 of the energy at every interval.

use super::{assert_rel, scrape_after, start, sum, Host, GPU_A};
use crate::support::now_unix;

#[test]
fn splits_follow_sm_shares_at_every_sample_interval() {
    let host = Host::new("splits");
    host.process(
        601,
        1001,
        "0::/system.slice/slurmstepd.scope/job_700/step_0/user/task_0\n",
    )
    .process(
        602,
        1002,
        "0::/user.slice/user-1002.slice/session-4.scope\n",
    );
    // Shorter than NVML's period (ticks reuse the latest samples), equal to it, and longer
    // (each tick averages the two or three samples it got).
    for interval in ["50ms", "100ms", "150ms", "1s", "2500ms"] {
        let epoch = now_unix();
        // A varying power draw, so a wrong split on some ticks can't cancel out.
        let scenario = format!(
            "epoch = {epoch}\n[gpu]\nuuid = {GPU_A}\npower = square:100:400:0.7\n\
             process_sample_period = 1\nprocess = pid=601 sm=const:50\nprocess = pid=602 sm=const:5\n"
        );
        let flag = format!("--sample.interval={interval}");
        let exporter = start(
            &host,
            &scenario,
            &[
                &flag,
                "--attribution.labels=user,slurm_job",
                "--kubernetes.pod-resources-socket=",
                "--kubernetes.cri-socket=",
            ],
        );
        let s = scrape_after(&exporter, epoch, 3.5);
        let device = s.value("gpu_energy_kwh_total", &[("uuid", GPU_A)]);
        let job = sum(&s, "gpu_workload_energy_kwh_total", &[("slurm_job", "700")]);
        let login = sum(&s, "gpu_workload_energy_kwh_total", &[("user", "bob")]);
        eprintln!(
            "interval {interval}: job {:.6} (truth {:.6}), login {:.6} (truth {:.6})",
            job / device,
            50.0 / 55.0,
            login / device,
            5.0 / 55.0
        );
        assert_rel(
            &format!("job at {interval}"),
            job,
            device * 50.0 / 55.0,
            1e-9,
        );
        assert_rel(
            &format!("login at {interval}"),
            login,
            device * 5.0 / 55.0,
            1e-9,
        );
    }
    let _ = std::fs::remove_dir_all(&host.dir);
}
