//! Cost of one `powermetrics` sample on the collector's reader thread: splitting the child's
//! output at NULs and parsing the property list (the recorded Apple Silicon and Intel samples
//! in `tests/fixtures/powermetrics`). Off the sampler thread, once per `--sample.interval`.
//! Run: `cargo bench --bench powermetrics`.

use criterion::{criterion_group, criterion_main, Criterion};
use gpu_carbon_exporter::backend::powermetrics::child::Frames;
use gpu_carbon_exporter::backend::powermetrics::plist::parse;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/powermetrics");

fn bench(c: &mut Criterion) {
    for name in ["apple-silicon", "intel"] {
        let sample = std::fs::read(format!("{FIXTURES}/{name}.plist")).expect("fixture");
        let mut stream = sample.clone();
        stream.push(0);
        println!("{name}: {} bytes a sample", sample.len());
        c.bench_function(&format!("split and parse one {name} sample"), |b| {
            b.iter(|| {
                let mut frames = Frames::default();
                let mut parsed = 0;
                frames
                    .push(&stream, |f| parsed += usize::from(parse(f).is_ok()))
                    .expect("fits");
                assert_eq!(parsed, 1);
            })
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
