//! Rendering: tables (comfy-table), JSON, Prometheus text. Decides nothing.

pub mod prometheus;
pub mod table;

pub use mtlsctl_core::types::text::{date, days_left, rfc3339, sanitize};
