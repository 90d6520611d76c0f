//! End-to-end tests: the real `gpu-carbon-exporter` binary, started as a user would start it,
//! against the simulated backend and against the fake `libnvidia-ml.so` in `tests/fake-nvml`.
//! One test binary (as ripgrep does) so the whole suite links once.

mod cli;
mod deploy;
mod golden;
mod http;
mod nvml;
mod observability;
mod state;
mod support;
mod sysfs;
