//! The web configuration's reload status (`--web.config.file`), read from the state the reload
//! task updates. Registered only when a web configuration file is in use.

use std::collections::HashMap;
use std::sync::Arc;

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;

use super::reload::ReloadStatus;
use crate::render::metrics::{WEB, WEB_CONFIG_LAST, WEB_CONFIG_RELOAD};
use crate::render::Families;

/// Renders `gpu_carbon_exporter_web_config_*`.
pub struct ReloadMetrics {
    status: Arc<ReloadStatus>,
    descs: Vec<Desc>,
}

impl ReloadMetrics {
    /// The metrics of `status`, as a prometheus `Collector` registered beside the snapshot's
    /// (they change on reload, not on a sample).
    pub fn new(status: Arc<ReloadStatus>) -> prometheus::Result<ReloadMetrics> {
        let descs = WEB
            .iter()
            .map(|s| Desc::new(s.name.into(), s.help.into(), Vec::new(), HashMap::new()))
            .collect::<prometheus::Result<_>>()?;
        Ok(ReloadMetrics { status, descs })
    }
}

impl Collector for ReloadMetrics {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let mut out = Families::default();
        let ok = if self.status.succeeded() { 1.0 } else { 0.0 };
        out.add(&WEB_CONFIG_RELOAD, &[], ok);
        out.add(&WEB_CONFIG_LAST, &[], self.status.last_success_unix());
        out.0.into_values().collect()
    }
}
