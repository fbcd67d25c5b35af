//! Settings that may hold a password (AMQP_URL, DATABASE_URL, API keys): never shown by
//! `Debug`, scrubbed from the errors of the clients that read them.

use serde::Deserialize;

/// A setting that may hold a password: never shown by `Debug`, so a logged `Settings` leaks
/// nothing. [`Secret::redacted`] is the form for logs.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// A URL with its password replaced by `***` (`amqp://guest:***@host:5672/vhost`).
    pub fn redacted(&self) -> String {
        redact_url(&self.0)
    }

    /// `text` (a client library's error, say) with this URL and its password, as written and
    /// as decoded, replaced by their redacted forms.
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.replace(&self.0, &self.redacted());
        if let Ok(url) = url::Url::parse(&self.0)
            && let Some(password) = url.password().filter(|p| !p.is_empty())
        {
            let decoded = percent_encoding::percent_decode_str(password).decode_utf8_lossy();
            for form in [decoded.as_ref(), password] {
                out = out.replace(form, "***");
            }
        }
        out
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// `scheme://user:password@host/...` → `scheme://user:***@host/...`, read by a URL parser; text
/// that is no URL shows only its scheme, since where its password ends cannot be known.
pub fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut url) => {
            if url.password().is_some() {
                // Cannot fail: a URL with a password has a host.
                let _ = url.set_password(Some("***"));
            }
            url.to_string()
        }
        Err(_) => match raw.split_once("://") {
            Some((scheme, _)) if scheme.chars().all(|c| c.is_ascii_alphanumeric()) => {
                format!("{scheme}://***")
            }
            _ => "***".to_string(),
        },
    }
}
