//! `--collector.attribution`, `--attribution.*`, `--path.procfs`, `--path.rootfs` and
//! `--kubernetes.*`: who the GPU energy is attributed to.

use std::path::PathBuf;
use std::time::Duration;

use super::checks::within;
use super::{invalid, ConfigError};
use crate::attribution;
use crate::cli::Cli;

/// `--collector.attribution` and `--attribution.*`, `--path.procfs`, `--path.rootfs`,
/// `--kubernetes.*`.
#[derive(Debug, Clone, PartialEq)]
pub struct AttributionConfig {
    /// Labels, retention and series cap.
    pub settings: attribution::Settings,
    /// `--path.procfs`.
    pub procfs: PathBuf,
    /// `--path.rootfs`.
    pub rootfs: PathBuf,
    /// `--kubernetes.pod-resources-socket`, unless empty.
    pub pod_resources: Option<PathBuf>,
    /// `--kubernetes.cri-socket`, unless empty.
    pub cri: Option<PathBuf>,
    /// `--kubernetes.refresh-interval`.
    pub kubernetes_refresh: Duration,
}

/// The attribution settings, or `None` with `--no-collector.attribution` (flags are checked
/// either way, so a typo is reported even when attribution is off).
pub(super) fn config(cli: &Cli) -> Result<Option<AttributionConfig>, ConfigError> {
    let mut labels = Vec::new();
    for name in cli
        .attribution_labels
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
    {
        let label = attribution::Label::parse(name).ok_or_else(|| {
            invalid(
                "attribution.labels",
                &cli.attribution_labels,
                format!("unknown label {name:?}; choose from user, namespace, pod, container, slurm_job"),
            )
        })?;
        labels.push(label);
    }
    labels.sort();
    labels.dedup();
    let retention = within(
        "attribution.retention",
        &cli.attribution_retention,
        (Duration::ZERO, Duration::from_secs(366 * 86_400)),
    )?;
    if cli.attribution_max_series == 0 {
        return Err(invalid("attribution.max-series", 0, "must be at least 1"));
    }
    let refresh = within(
        "kubernetes.refresh-interval",
        &cli.kubernetes_refresh_interval,
        (Duration::from_millis(100), Duration::from_secs(3600)),
    )?;
    if cli.no_collector_attribution {
        return Ok(None);
    }
    let socket = &cli.pod_resources_socket;
    Ok(Some(AttributionConfig {
        settings: attribution::Settings {
            labels,
            retention,
            max_series: cli.attribution_max_series,
        },
        procfs: cli.path_procfs.clone(),
        rootfs: cli.path_rootfs.clone(),
        pod_resources: (!socket.is_empty()).then(|| PathBuf::from(socket)),
        cri: (!cli.cri_socket.is_empty()).then(|| PathBuf::from(&cli.cri_socket)),
        kubernetes_refresh: refresh,
    }))
}
