//! The serving side's settings: the web configuration's guard and reloader, and the constant
//! gauges alerts judge the metrics by.

use std::sync::Arc;

use tracing::info;

use super::StartError;
use crate::config::Config;
use crate::{exposition, webconfig};

/// The request guard for `--web.config.file` (open HTTP without one), its reload task, and
/// its reload metrics.
pub(crate) fn web_security(
    config: &Config,
    exposition: &exposition::Exposition,
) -> Result<(Arc<webconfig::Guard>, Option<webconfig::Reloader>), StartError> {
    let Some(web) = &config.web else {
        return Ok((
            Arc::new(webconfig::Guard::new(Arc::new(webconfig::Security::open()))),
            None,
        ));
    };
    info!(file = %web.path.display(), settings = web.security.summary(), "Web configuration loaded");
    let status = Arc::new(webconfig::ReloadStatus::loaded_now());
    let live = Arc::clone(&status);
    webconfig::ReloadMetrics::new(Arc::clone(&status))
        .and_then(|c| exposition.register_live(Box::new(c), move || live.fingerprint()))
        .map_err(StartError::Registry)?;
    let guard = Arc::new(webconfig::Guard::new(Arc::clone(&web.security)));
    let reloader = webconfig::Reloader::new(
        web.path.clone(),
        Arc::clone(&guard),
        status,
        web.watched.clone(),
    )
    .map_err(StartError::Signal)?;
    Ok((guard, Some(reloader)))
}

/// Registers the settings that alerts and panels judge the metrics against (the sample
/// interval), as constant gauges.
pub(crate) fn register_settings(
    config: &Config,
    exposition: &exposition::Exposition,
) -> Result<(), StartError> {
    exposition
        .register_sample_interval(config.sample_interval)
        .map_err(StartError::Registry)
}
