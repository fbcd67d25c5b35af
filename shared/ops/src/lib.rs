//! Operating the services (DESIGN §10): Prometheus metrics, the health endpoints, alerts (what
//! is told, and to which channels: the webhooks themselves are `adapters::webhooks`), and
//! secrets that never reach a log.

pub mod alerts;
pub mod health;
mod metrics;
mod secret;

pub use alerts::{Alert, Alerter, Level, Notify, enrollment_alert};
pub use health::{Health, Limits};
pub use metrics::{Metrics, metrics};
pub use secret::{Secret, redact_url};
