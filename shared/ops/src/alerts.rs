//! Alerts (DESIGN §10): what is told, at which level, and to whom. Every alert is logged; the
//! [`Alerter`] also hands it to each configured channel (Slack, Discord, a generic webhook: see
//! `adapters::webhooks`). A channel that fails is its own business, never an error for the job
//! that raised the alert.

use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;

use engine::matching::Calibration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Warning,
    Critical,
}

impl Level {
    pub fn name(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Critical => "critical",
        }
    }

    /// Slack attachment colour / Discord embed colour.
    pub fn colour(self) -> (&'static str, u32) {
        match self {
            Self::Info => ("#2eb67d", 0x2e_b6_7d),
            Self::Warning => ("#ecb22e", 0xec_b2_2e),
            Self::Critical => ("#e01e5a", 0xe0_1e_5a),
        }
    }
}

/// One alert: `event` is a stable name (`job_started`, `job_failed`, `low_success_rate`,
/// `api_failures`, `memory`, `job_timed_out`, `enrollment_issues`).
#[derive(Debug, Clone)]
pub struct Alert {
    pub event: &'static str,
    pub level: Level,
    pub title: String,
    pub text: String,
    pub fields: Vec<(String, String)>,
}

/// Somewhere an alert is sent: a webhook of one service, in its format.
#[async_trait]
pub trait Notify: Send + Sync {
    /// Sends `alert`, raised by `service`; retries and failures are the channel's own.
    async fn notify(&self, alert: &Alert, service: &'static str);
}

#[derive(Clone)]
pub struct Alerter {
    channels: Vec<Arc<dyn Notify>>,
    service: &'static str,
}

impl Alerter {
    /// `service`'s alerts, to `channels`.
    pub fn new(service: &'static str, channels: Vec<Arc<dyn Notify>>) -> Self {
        Self { channels, service }
    }

    /// No channel: every alert is only logged.
    pub fn none(service: &'static str) -> Self {
        Self::new(service, Vec::new())
    }

    pub fn is_configured(&self) -> bool {
        !self.channels.is_empty()
    }

    /// Logs the alert and sends it to every channel; never fails.
    pub async fn send(&self, alert: &Alert) {
        match alert.level {
            Level::Critical => {
                tracing::error!(event = alert.event, title = %alert.title, text = %alert.text, "alert")
            }
            Level::Warning => {
                tracing::warn!(event = alert.event, title = %alert.title, text = %alert.text, "alert")
            }
            Level::Info => {
                tracing::info!(event = alert.event, title = %alert.title, text = %alert.text, "alert")
            }
        }
        for channel in &self.channels {
            channel.notify(alert, self.service).await;
        }
    }
}

/// A job's location has voice samples left out or employees that sound alike: named, each
/// with its fix, so whoever looks after the samples can act before the next day's clips.
pub fn enrollment_alert(job_id: &str, location: &str, calibration: &Calibration) -> Alert {
    let flagged: Vec<String> = calibration
        .flagged
        .iter()
        .map(|f| format!("{} ({})", f.name, f.sample))
        .collect();
    let alike: Vec<String> = calibration
        .look_alike
        .iter()
        .map(|p| format!("{} / {}", p.a_name, p.b_name))
        .collect();
    let mut fields = vec![
        ("job".to_string(), job_id.to_string()),
        ("location".to_string(), location.to_string()),
        (
            "threshold".to_string(),
            format!("{:.3}", calibration.rules.threshold),
        ),
    ];
    if !flagged.is_empty() {
        fields.push(("flagged samples".into(), flagged.join(", ")));
    }
    if !alike.is_empty() {
        fields.push(("look-alike employees".into(), alike.join(", ")));
    }
    Alert {
        event: "enrollment_issues",
        level: Level::Warning,
        title: format!("voice diarization: job {job_id}: voice profiles need attention"),
        text: calibration.issues().join("\n"),
        fields,
    }
}

/// `2026-11-29T03:04:05Z`.
pub fn rfc3339(t: SystemTime) -> String {
    let t = time::OffsetDateTime::from(t);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timestamps_are_rfc3339() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_385_445);
        assert_eq!(rfc3339(t), "2025-11-29T03:04:05Z");
        assert_eq!(rfc3339(SystemTime::UNIX_EPOCH), "1970-01-01T00:00:00Z");
    }
}
