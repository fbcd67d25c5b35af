//! Alerts to Slack, Discord and a generic webhook (DESIGN §10), each in its own service's
//! format. Webhook URLs are secrets (they carry the token): only `https://` is accepted (plain
//! `http://` only to a loopback address, for tests), and a URL never reaches a log or an error.
//! Sending is retried; a webhook that keeps failing is logged and counted, never an error for
//! the job that raised the alert.

use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};

use crate::Secret;
use crate::metrics;
use engine::matching::Calibration;

/// Waits before the 2nd and 3rd try of a webhook.
const RETRY_DELAYS: [Duration; 2] = [Duration::from_millis(500), Duration::from_secs(2)];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Warning,
    Critical,
}

impl Level {
    fn name(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Critical => "critical",
        }
    }

    /// Slack attachment colour / Discord embed colour.
    fn colour(self) -> (&'static str, u32) {
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Channel {
    Slack,
    Discord,
    Generic,
}

impl Channel {
    fn name(self) -> &'static str {
        match self {
            Self::Slack => "slack",
            Self::Discord => "discord",
            Self::Generic => "webhook",
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{setting} must be an https:// URL (http:// only to a loopback address, for tests)")]
pub struct WebhookUrlError {
    setting: &'static str,
}

#[derive(Clone)]
pub struct Alerter {
    sinks: Vec<(Channel, Secret)>,
    client: Option<reqwest::Client>,
    service: &'static str,
}

/// `https://…`, or `http://` to 127.0.0.1, ::1 or localhost.
fn acceptable(url: &str) -> bool {
    if url.starts_with("https://") {
        return url.len() > "https://".len();
    }
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = host.rsplit('@').next().unwrap_or_default();
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host.split(':').next().unwrap_or_default(),
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl Alerter {
    /// The configured channels; a plain-http or malformed URL is refused here, at start-up.
    pub fn new(
        service: &'static str,
        slack: Option<&Secret>,
        discord: Option<&Secret>,
        generic: Option<&Secret>,
    ) -> Result<Self, WebhookUrlError> {
        let mut sinks = Vec::new();
        for (channel, setting, url) in [
            (Channel::Slack, "SLACK_WEBHOOK_URL", slack),
            (Channel::Discord, "DISCORD_WEBHOOK_URL", discord),
            (Channel::Generic, "MONITORING_WEBHOOK_URL", generic),
        ] {
            let Some(url) = url.filter(|u| !u.expose().trim().is_empty()) else {
                continue;
            };
            if !acceptable(url.expose().trim()) {
                return Err(WebhookUrlError { setting });
            }
            sinks.push((channel, Secret::new(url.expose().trim())));
        }
        let client = if sinks.is_empty() {
            None
        } else {
            Some(crate::http::client(Duration::from_secs(10)).unwrap_or_default())
        };
        Ok(Self {
            sinks,
            client,
            service,
        })
    }

    /// No channel: every alert is only logged.
    pub fn none(service: &'static str) -> Self {
        Self {
            sinks: Vec::new(),
            client: None,
            service,
        }
    }

    pub fn is_configured(&self) -> bool {
        !self.sinks.is_empty()
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
        let Some(client) = &self.client else { return };
        let sends = self.sinks.iter().map(|(channel, url)| {
            let body = self.payload(*channel, alert);
            send_one(client, *channel, url, body)
        });
        for send in sends {
            send.await;
        }
    }

    fn payload(&self, channel: Channel, alert: &Alert) -> Value {
        let (hex, colour) = alert.level.colour();
        let timestamp = rfc3339(SystemTime::now());
        match channel {
            // Incoming webhooks: `text` is the notification, the attachment carries the fields.
            Channel::Slack => json!({
                "text": format!("[{}] {}", alert.level.name(), alert.title),
                "attachments": [{
                    "color": hex,
                    "text": alert.text,
                    "fields": alert.fields.iter()
                        .map(|(k, v)| json!({"title": k, "value": v, "short": true}))
                        .collect::<Vec<_>>(),
                    "footer": format!("voice-diarization {}", self.service),
                }],
            }),
            Channel::Discord => json!({
                "username": "voice-diarization",
                "embeds": [{
                    "title": alert.title,
                    "description": alert.text,
                    "color": colour,
                    "fields": alert.fields.iter()
                        .map(|(k, v)| json!({"name": k, "value": v, "inline": true}))
                        .collect::<Vec<_>>(),
                    "footer": {"text": format!("voice-diarization {}", self.service)},
                    "timestamp": timestamp,
                }],
            }),
            Channel::Generic => json!({
                "event": alert.event,
                "level": alert.level.name(),
                "title": alert.title,
                "message": alert.text,
                "fields": alert.fields.iter()
                    .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
                    .collect::<serde_json::Map<String, Value>>(),
                "service": self.service,
                "timestamp": timestamp,
            }),
        }
    }
}

async fn send_one(client: &reqwest::Client, channel: Channel, url: &Secret, body: Value) {
    let started = Instant::now();
    let mut delays = RETRY_DELAYS.iter();
    loop {
        let error = match client.post(url.expose()).json(&body).send().await {
            Ok(r) if r.status().is_success() => {
                metrics()
                    .alerts
                    .with_label_values(&[channel.name(), "sent"])
                    .inc();
                metrics().api_call("webhook", "ok", started.elapsed().as_secs_f64());
                return;
            }
            Ok(r) => format!("HTTP {}", r.status().as_u16()),
            Err(e) => crate::http::without_url(&e),
        };
        match delays.next() {
            Some(delay) => tokio::time::sleep(*delay).await,
            None => {
                metrics()
                    .alerts
                    .with_label_values(&[channel.name(), "failed"])
                    .inc();
                metrics().api_call("webhook", "failed", started.elapsed().as_secs_f64());
                tracing::warn!(channel = channel.name(), %error, "the alert could not be sent");
                return;
            }
        }
    }
}

/// `2026-11-29T03:04:05Z`, without a date crate.
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

    #[test]
    fn only_https_or_loopback_http_is_accepted() {
        assert!(acceptable("https://hooks.slack.com/services/T0/B0/x"));
        assert!(acceptable("http://127.0.0.1:8080/hook"));
        assert!(acceptable("http://localhost/hook"));
        assert!(acceptable("http://[::1]:9/x"));
        assert!(!acceptable("http://hooks.slack.com/services/x"));
        assert!(!acceptable("http://127.0.0.1.evil.com/x"));
        assert!(!acceptable("ftp://x"));
        assert!(!acceptable("https://"));
        let bad = Secret::new("http://example.com/secret-token");
        let e = Alerter::new("t", Some(&bad), None, None)
            .err()
            .map(|e| e.to_string());
        assert!(
            e.as_deref()
                .is_some_and(|e| e.contains("SLACK_WEBHOOK_URL") && !e.contains("secret-token"))
        );
    }

    #[test]
    fn timestamps_are_rfc3339() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_385_445);
        assert_eq!(rfc3339(t), "2025-11-29T03:04:05Z");
        assert_eq!(rfc3339(SystemTime::UNIX_EPOCH), "1970-01-01T00:00:00Z");
    }
}
