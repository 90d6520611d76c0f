//! Why the exporter could not start: one error per failing start-up step.

use std::net::SocketAddr;

use crate::backend::nvml::InitError;

/// Why the exporter could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// NVML could not be loaded or initialised.
    #[error("{0}. Is the NVIDIA driver installed and loaded? Set --nvml.library-path if NVML lives elsewhere, or run with --demo to try the exporter with simulated GPUs")]
    Nvml(#[from] InitError),
    /// NVML started but could not list GPUs.
    #[error("NVML from {library} could not list GPUs: {source}")]
    Discover {
        /// The library in use.
        library: String,
        /// NVML's error.
        source: nvml_wrapper::error::NvmlError,
    },
    /// NVML found no GPU.
    #[error("NVML from {library} found no GPU to monitor (in a container, is the NVIDIA runtime exposing the devices?)")]
    NoGpus {
        /// The library in use.
        library: String,
    },
    /// A listen address could not be bound.
    #[error("cannot listen on {addr} (--web.listen-address): {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// The ledger's journal could not be taken (another exporter holds it).
    #[error("--state.file: {0}")]
    State(#[from] crate::state::journal::OpenError),
    /// A background thread could not be started.
    #[error("cannot start the {what} thread: {source}")]
    Thread {
        /// Which.
        what: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
    /// The metrics registry refused a collector (two with one name: a bug).
    #[error("metrics registry: {0}")]
    Registry(prometheus::Error),
    /// SIGHUP could not be handled (for `--web.config.file` reloads).
    #[error("cannot handle SIGHUP: {0}")]
    Signal(std::io::Error),
    /// A start-up step off the async workers panicked.
    #[error("a start-up step panicked: {0}")]
    Panicked(#[from] tokio::task::JoinError),
}
