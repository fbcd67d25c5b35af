//! Operating the services (DESIGN §10): Prometheus metrics, the health endpoints, memory and
//! GPU sampling, and alerts to Slack, Discord or a webhook.

pub mod alerts;
pub mod health;
mod metrics;
pub mod system;

pub use alerts::{Alert, Alerter, Level, enrollment_alert};
pub use health::{Health, Limits};
pub use metrics::{Metrics, metrics};
