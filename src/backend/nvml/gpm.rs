//! GPM samples kept between ticks: a GPU instance's activity over an interval is computed from
//! the sample taken at its start and the one taken at its end (`nvmlGpmMetricsGet`).
//!
//! `nvml-wrapper` ties a sample's lifetime to the `Nvml` that made it, and the library that
//! owns that `Nvml` keeps the samples, so they are kept here as raw handles and turned back
//! into owned samples (freed when dropped) while the `Nvml` is borrowed.

use std::collections::HashMap;
use std::sync::Mutex;

use nvml_wrapper::enums::gpm::GpmMetricId;
use nvml_wrapper::error::NvmlError;
use nvml_wrapper::gpm::{gpm_metrics_get, GpmSample};
use nvml_wrapper::Nvml;
use nvml_wrapper_sys::bindings::nvmlGpmSample_t;

/// A sample allocated by NVML, owned by [`Samples`].
struct Raw(nvmlGpmSample_t);

// SAFETY: a GPM sample is a heap buffer that NVML only touches in calls that are given it;
// `Samples` hands each to one call at a time, under its mutex.
unsafe impl Send for Raw {}

/// The latest sample of each (GPU UUID, GPU instance).
#[derive(Default)]
pub(super) struct Samples {
    latest: Mutex<HashMap<(String, u32), Raw>>,
}

impl Samples {
    /// Takes a new sample of `gpu_instance` on `device` and returns its graphics utilization
    /// (percent) since the previous one, `None` if there was none. A failed sample forgets the
    /// previous one, so the next interval starts afresh.
    pub(super) fn activity(
        &self,
        nvml: &Nvml,
        device: &nvml_wrapper::Device<'_>,
        uuid: &str,
        gpu_instance: u32,
    ) -> Result<Option<f64>, NvmlError> {
        let key = (uuid.to_string(), gpu_instance);
        let mut latest = self.latest.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: every stored handle came from `into_handle` of a sample of this `nvml`, and
        // is removed from the map before it is owned again, so it is freed exactly once.
        let previous = latest
            .remove(&key)
            .map(|raw| unsafe { GpmSample::from_handle(nvml, raw.0) });
        let sample = device.gpm_mig_sample(gpu_instance)?;
        let activity = match previous {
            None => None,
            Some(prev) => {
                let got = gpm_metrics_get(nvml, &prev, &sample, &[GpmMetricId::GraphicsUtil])?;
                let value = got.into_iter().next().ok_or(NvmlError::Unknown)??;
                Some(value.value)
            }
        };
        latest.insert(key, Raw(sample.into_handle()));
        Ok(activity)
    }

    /// Frees every kept sample (before NVML shuts down).
    pub(super) fn free(&self, nvml: &Nvml) {
        let mut latest = self.latest.lock().unwrap_or_else(|e| e.into_inner());
        for (_, raw) in latest.drain() {
            // SAFETY: as in `activity`: a handle of this `nvml`, owned once, then dropped.
            drop(unsafe { GpmSample::from_handle(nvml, raw.0) });
        }
    }
}
