//! Scrape render time and response size for 1, 8 and 64 GPUs: the work a scrape does (build
//! metric families from the latest snapshot and encode them as text), without HTTP.
//! Run: `cargo bench --bench render`. Sizes are printed once per GPU count.

use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use gpu_carbon_exporter::backend::simulated::SimulatedBackend;
use gpu_carbon_exporter::carbon::providers::zones::ZoneTable;
use gpu_carbon_exporter::carbon::FixedIntensity;
use gpu_carbon_exporter::clock::{Clock, ManualClock};
use gpu_carbon_exporter::exposition::Exposition;
use gpu_carbon_exporter::sampler::{AccountingSettings, Sampler};
use gpu_carbon_exporter::snapshot::CollectorStatus;
use tokio::sync::watch;

/// An exposition over `gpus` simulated GPUs after a few ticks.
fn exposition(gpus: u32) -> Exposition {
    let clock = Arc::new(ManualClock::new(1_800_000_000.0));
    let backend = SimulatedBackend::new(gpus, Arc::clone(&clock) as Arc<dyn Clock>);
    let zone = ZoneTable::builtin().get("DE").expect("DE");
    let mut sampler = Sampler::new(
        vec![Box::new(backend)],
        Box::new(FixedIntensity::zone(zone)),
        AccountingSettings::with_pue(1.2),
        vec![CollectorStatus::new("simulated", true)],
    );
    let (publish, snapshots) = watch::channel(None);
    for _ in 0..5 {
        publish.send_replace(Some(Arc::new(sampler.tick(clock.as_ref()))));
        clock.advance(Duration::from_secs(1));
    }
    // Keep the sender alive for the benchmark's lifetime.
    std::mem::forget(publish);
    Exposition::new(snapshots, true, None).expect("registry")
}

fn render(c: &mut Criterion) {
    let mut group = c.benchmark_group("scrape_render");
    for gpus in [1u32, 8, 64] {
        let e = exposition(gpus);
        let size = e.render().expect("render").len();
        eprintln!("scrape_render/{gpus} GPUs: response {size} bytes");
        group.bench_with_input(BenchmarkId::from_parameter(gpus), &e, |b, e| {
            b.iter(|| e.render().expect("render"))
        });
    }
    group.finish();
}

/// One sampler tick over 8 simulated GPUs (accounting + snapshot), for scale.
fn tick(c: &mut Criterion) {
    let clock = Arc::new(ManualClock::new(1_800_000_000.0));
    let backend = SimulatedBackend::new(8, Arc::clone(&clock) as Arc<dyn Clock>);
    let mut sampler = Sampler::new(
        vec![Box::new(backend)],
        Box::new(FixedIntensity::custom(400.0)),
        AccountingSettings::with_pue(1.0),
        vec![CollectorStatus::new("simulated", true)],
    );
    c.bench_function("sampler_tick/8", |b| {
        b.iter(|| {
            clock.advance(Duration::from_millis(100));
            sampler.tick(clock.as_ref())
        })
    });
}

criterion_group!(benches, render, tick);
criterion_main!(benches);
