//! Operating the services (DESIGN §10): Prometheus metrics, the health endpoints, alerts to
//! Slack, Discord or a webhook, the HTTP client settings every outbound call shares, and
//! secrets that never reach a log.

pub mod alerts;
pub mod health;
pub mod http;
mod metrics;
mod secret;

pub use alerts::{Alert, Alerter, Level, enrollment_alert};
pub use health::{Health, Limits};
pub use metrics::{Metrics, metrics};
pub use secret::{Secret, redact_url};
