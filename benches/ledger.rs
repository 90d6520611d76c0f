//! Cost of making each sample durable before it is served (`--state.file`), for 8 and 64
//! simulated GPUs with the demo workloads: a journal commit (the state of the snapshot, what
//! changed since the last commit, one appended line, `fdatasync`) and a full rewrite of the
//! state file (temp file, fsync, rename, fsync of the directory), done once per
//! `--state.flush-interval`. Bytes per commit and per rewrite are printed, for bytes/s at 1 s
//! sampling. The files go to `$LEDGER_BENCH_DIR` (default: the system temp dir) — put it on
//! the disk whose latency you want to know. Run: `cargo bench --bench ledger`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use gpu_carbon_exporter::attribution::demo;
use gpu_carbon_exporter::backend::simulated::SimulatedBackend;
use gpu_carbon_exporter::backend::Backend;
use gpu_carbon_exporter::carbon::FixedIntensity;
use gpu_carbon_exporter::clock::{Clock, ManualClock};
use gpu_carbon_exporter::sampler::{AccountingSettings, Sampler};
use gpu_carbon_exporter::snapshot::{CollectorStatus, Snapshot};
use gpu_carbon_exporter::state::journal::{self, Journal};
use gpu_carbon_exporter::state::store::write_atomic;
use gpu_carbon_exporter::state::StateFile;

/// A sampler over `gpus` simulated GPUs with the demo's workloads, and its clock.
fn sampler(gpus: u32) -> (Sampler, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(1_800_000_000.0));
    let backend = SimulatedBackend::new(gpus, Arc::clone(&clock) as Arc<dyn Clock>);
    let infos = backend.devices().to_vec();
    let mut sampler = Sampler::new(
        vec![Box::new(backend)],
        Box::new(FixedIntensity::custom(400.0)),
        AccountingSettings::with_pue(1.2),
        vec![CollectorStatus::new("simulated", true)],
    );
    let settings = gpu_carbon_exporter::attribution::Settings::default();
    sampler.attribute(demo::attributor(&settings, &infos));
    (sampler, clock)
}

fn next(sampler: &mut Sampler, clock: &ManualClock) -> Snapshot {
    clock.advance(Duration::from_secs(1));
    sampler.tick(clock)
}

fn dir(gpus: u32) -> PathBuf {
    let base = std::env::var_os("LEDGER_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let d = base.join(format!("gce-ledger-bench-{}-{gpus}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("bench dir");
    d
}

fn ledger(c: &mut Criterion) {
    let mut group = c.benchmark_group("ledger");
    for gpus in [8u32, 64] {
        let (mut sampler, clock) = sampler(gpus);
        let path = dir(gpus).join("state.json");
        let mut journal = Journal::open(&journal::path_for(&path)).expect("journal");
        let mut durable = StateFile::from_snapshot(&next(&mut sampler, &clock));
        let full = durable.to_json().expect("valid").len();
        let sample = StateFile::from_snapshot(&next(&mut sampler, &clock));
        let line = serde_json::to_string(&sample.changes_since(&durable))
            .expect("json")
            .len()
            + 1;
        eprintln!(
            "ledger/{gpus} GPUs ({} workloads): commit {line} bytes, rewrite {full} bytes; at 1 s sampling and a 30 s flush {:.0} bytes/s",
            sample.attribution.as_ref().map_or(0, |a| a.workloads.len()),
            line as f64 + full as f64 / 30.0
        );
        group.bench_with_input(BenchmarkId::new("commit", gpus), &gpus, |b, _| {
            b.iter(|| {
                let file = StateFile::from_snapshot(&next(&mut sampler, &clock));
                journal
                    .append(&file.changes_since(&durable))
                    .expect("append");
                durable = file;
            })
        });
        journal.clear().expect("clear");
        group.bench_with_input(BenchmarkId::new("rewrite", gpus), &gpus, |b, _| {
            b.iter(|| {
                let text = durable.to_json().expect("valid");
                write_atomic(&path, &text).expect("rewrite");
            })
        });
        group.bench_with_input(BenchmarkId::new("tick_and_diff", gpus), &gpus, |b, _| {
            b.iter(|| {
                let file = StateFile::from_snapshot(&next(&mut sampler, &clock));
                let record = file.changes_since(&durable);
                durable = file;
                record
            })
        });
    }
    group.finish();
}

criterion_group!(benches, ledger);
criterion_main!(benches);
