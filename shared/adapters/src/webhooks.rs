//! Alert channels (DESIGN §10): Slack, Discord and a generic webhook, each in its own service's
//! format, behind `ops::alerts::Notify`. Webhook URLs are secrets (they carry the token): only
//! `https://` is accepted (plain `http://` only to a loopback address, for tests), and a URL
//! never reaches a log or an error. Sending is retried; a webhook that keeps failing is logged
//! and counted.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use serde_json::{Value, json};

use ops::alerts::{Alert, Alerter, Notify, rfc3339};
use ops::{Secret, metrics};

/// Waits before the 2nd and 3rd try of a webhook.
const RETRY_DELAYS: [Duration; 2] = [Duration::from_millis(500), Duration::from_secs(2)];

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

/// One channel's webhook: its URL (a secret) and the client that posts to it.
pub struct Webhook {
    channel: Channel,
    url: Secret,
    client: reqwest::Client,
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

/// `service`'s alerter with the configured webhooks; a plain-http or malformed URL is refused
/// here, at start-up.
pub fn alerter(
    service: &'static str,
    slack: Option<&Secret>,
    discord: Option<&Secret>,
    generic: Option<&Secret>,
) -> Result<Alerter, WebhookUrlError> {
    let mut channels: Vec<Arc<dyn Notify>> = Vec::new();
    let mut client = None;
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
        let client = client
            .get_or_insert_with(|| crate::http::client(Duration::from_secs(10)).unwrap_or_default())
            .clone();
        channels.push(Arc::new(Webhook {
            channel,
            url: Secret::new(url.expose().trim()),
            client,
        }));
    }
    Ok(Alerter::new(service, channels))
}

#[async_trait]
impl Notify for Webhook {
    async fn notify(&self, alert: &Alert, service: &'static str) {
        let body = payload(self.channel, alert, service);
        send_one(&self.client, self.channel, &self.url, body).await;
    }
}

fn payload(channel: Channel, alert: &Alert, service: &str) -> Value {
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
                "footer": format!("voice-diarization {}", service),
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
                "footer": {"text": format!("voice-diarization {}", service)},
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
            "service": service,
            "timestamp": timestamp,
        }),
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
        let e = alerter("t", Some(&bad), None, None)
            .err()
            .map(|e| e.to_string());
        assert!(
            e.as_deref()
                .is_some_and(|e| e.contains("SLACK_WEBHOOK_URL") && !e.contains("secret-token"))
        );
    }
}
