//! The sources of carbon intensity, one module each. Every provider implements
//! [`IntensityProvider`](super::IntensityProvider); the live ones ([`electricitymaps`],
//! [`watttime`], [`ukgrid`]) fetch through the shared plumbing of [`carbon`](super)
//! (`refresh`, `http`, `secret`, `time`) and fall back to a [`fixed`] value.

pub mod electricitymaps;
pub mod fixed;
pub mod schedule;
pub mod ukgrid;
pub mod watttime;
pub mod zones;
