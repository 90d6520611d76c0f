//! End-to-end tests: the real `gpu-carbon-exporter` binary, started as a user would start it,
//! against the simulated backend and against the fake `libnvidia-ml.so` in `tests/fake-nvml`.
//! One test binary (as ripgrep does) so the whole suite links once.

mod attribution;
mod auth_flood;
mod carbon_live;
mod carbon_mock;
mod carbon_schedule;
mod carbon_watttime;
mod check;
mod cli;
mod deploy;
mod discrepancy;
mod exposition;
mod golden;
mod host_estimate;
mod http;
mod layering;
mod mig;
mod nvml;
mod nvml_hang;
mod observability;
mod pki;
mod powermetrics;
mod scripts;
mod serving_limits;
mod serving_timeouts;
mod state;
mod state_crash;
mod state_files;
mod state_sync;
mod support;
mod sysfs;
mod sysfs_layouts;
mod tls_renewal;
mod verify_script;
mod webconfig;
mod webconfig_reload;
