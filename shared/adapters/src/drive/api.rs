//! Google Drive REST v3, the two calls this system needs: `files.list` (every page) and
//! `files.get?alt=media` (streamed to a file), authorised by a service-account token.
//!
//! The token comes from `yup-oauth2`, which signs a JWT with the key's private key and trades
//! it at the key's own `token_uri` (so a test points it at a local server); it is cached and
//! refreshed before it expires. 429, 5xx, 403 with a rate-limit reason and network errors are
//! retried with the configured delays, honouring `Retry-After`; a 401 gets one fresh token.
//! Errors carry Drive's own message, never the token, the key or a URL.

use std::path::Path;
use std::time::Duration;

use reqwest::{RequestBuilder, Response, StatusCode};
use serde::Deserialize;
use tokio::io::AsyncWriteExt;
use tokio::sync::OnceCell;
use yup_oauth2::ServiceAccountKey;
use yup_oauth2::authenticator::DefaultAuthenticator;

use crate::http::{retry_after, without_url};
use ops::Secret;
use ops::metrics;
use pipeline::source::SourceError;

const SCOPE: &str = "https://www.googleapis.com/auth/drive.readonly";
const FIELDS: &str = "nextPageToken,files(id,name,mimeType,size,md5Checksum,createdTime)";
pub const FOLDER_MIME: &str = "application/vnd.google-apps.folder";
/// A listing that pages on beyond this is a server bug, not a folder.
const MAX_PAGES: usize = 10_000;

#[derive(Clone)]
pub struct DriveConfig {
    /// `https://www.googleapis.com`, or a local server in tests.
    pub base_url: String,
    /// The service-account key JSON (`GOOGLE_DRIVE_CREDENTIALS`).
    pub credentials: Secret,
    /// Waits before the 2nd, 3rd, … try of a request that failed transiently.
    pub retry_delays: Vec<Duration>,
    /// One request (a whole download included) taking longer is a transient `timeout`.
    pub request_timeout: Duration,
    pub page_size: u32,
}

impl DriveConfig {
    pub fn new(base_url: &str, credentials: Secret) -> Self {
        Self {
            base_url: base_url.trim_end_matches('/').to_string(),
            credentials,
            retry_delays: [1, 2, 4].map(Duration::from_secs).to_vec(),
            request_timeout: Duration::from_secs(300),
            page_size: 1000,
        }
    }
}

/// One entry of a listing.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct DriveFile {
    pub id: String,
    pub name: String,
    pub mime_type: String,
    /// int64 as a JSON string; absent for Google Docs.
    #[serde(default, deserialize_with = "int64")]
    pub size: Option<u64>,
    #[serde(default)]
    pub md5_checksum: Option<String>,
    #[serde(default)]
    pub created_time: Option<String>,
}

impl DriveFile {
    pub fn is_folder(&self) -> bool {
        self.mime_type == FOLDER_MIME
    }
}

fn int64<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let text: Option<String> = Option::deserialize(d)?;
    Ok(text.and_then(|t| t.parse().ok()))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FileList {
    #[serde(default)]
    next_page_token: Option<String>,
    #[serde(default)]
    files: Vec<DriveFile>,
}

/// Drive's error body: `{"error": {"code", "message", "errors": [{"reason"}], "details"}}`.
#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    #[serde(default)]
    message: String,
    #[serde(default)]
    errors: Vec<ErrorReason>,
    #[serde(default)]
    details: Vec<ErrorReason>,
}

#[derive(Deserialize)]
struct ErrorReason {
    #[serde(default)]
    reason: String,
}

pub struct DriveApi {
    config: DriveConfig,
    client: reqwest::Client,
    key: ServiceAccountKey,
    auth: OnceCell<DefaultAuthenticator>,
}

/// A request that got no complete answer: always worth a retry.
fn network(what: &str, e: &reqwest::Error) -> SourceError {
    let kind = if e.is_timeout() {
        "drive_timeout"
    } else {
        "drive_network"
    };
    SourceError::service(
        kind,
        true,
        format!("Google Drive {what}: {}", without_url(e)),
    )
}

impl DriveApi {
    /// Checks the key now (a bad one is a configuration error); no request is made yet.
    pub fn new(config: DriveConfig) -> Result<Self, SourceError> {
        let key: ServiceAccountKey = serde_json::from_str(config.credentials.expose().trim())
            .map_err(|e| {
                // serde's message could quote a value of the key: only say where it broke.
                SourceError::service(
                    "config",
                    false,
                    format!(
                        "GOOGLE_DRIVE_CREDENTIALS is not a service-account key (JSON with \
                         private_key, client_email, token_uri): {:?} error at line {}, column {}",
                        e.classify(),
                        e.line(),
                        e.column()
                    ),
                )
            })?;
        let client = crate::http::client(config.request_timeout)
            .map_err(|e| SourceError::service("config", false, e))?;
        Ok(Self {
            config,
            client,
            key,
            auth: OnceCell::new(),
        })
    }

    async fn token(&self, fresh: bool) -> Result<String, SourceError> {
        let auth = self
            .auth
            .get_or_try_init(|| async {
                yup_oauth2::ServiceAccountAuthenticator::builder(self.key.clone())
                    .with_timeout(Duration::from_secs(30))
                    .build()
                    .await
                    .map_err(|e| {
                        SourceError::service(
                            "drive_unauthorized",
                            false,
                            format!(
                                "Google Drive: the service-account key is unusable: {}",
                                e.kind()
                            ),
                        )
                    })
            })
            .await?;
        let token = if fresh {
            auth.force_refreshed_token(&[SCOPE]).await
        } else {
            auth.token(&[SCOPE]).await
        };
        let token = token.map_err(|e| {
            use yup_oauth2::Error as E;
            let transient = matches!(
                e,
                E::HttpError(_) | E::HttpClientError(_) | E::LowLevelError(_) | E::JSONError(_)
            );
            // An AuthError is the token endpoint's answer (invalid_grant, …): safe to show.
            let text = match &e {
                E::AuthError(a) => a.to_string(),
                E::JSONError(_) => "the token endpoint's answer is not JSON".into(),
                _ => "the token endpoint cannot be reached".into(),
            };
            SourceError::service(
                if transient {
                    "drive_network"
                } else {
                    "drive_unauthorized"
                },
                transient,
                format!("Google Drive: no access token: {text}"),
            )
        })?;
        token.token().map(str::to_string).ok_or_else(|| {
            SourceError::service(
                "drive_unauthorized",
                false,
                "Google Drive: empty access token".into(),
            )
        })
    }

    /// Whether a token can be had now (the key is accepted): the readiness check.
    pub async fn check(&self) -> Result<(), SourceError> {
        self.token(false).await.map(drop)
    }

    /// Every file matching `q` (all pages), shared drives included.
    pub async fn list(&self, q: &str) -> Result<Vec<DriveFile>, SourceError> {
        let url = format!("{}/drive/v3/files", self.config.base_url);
        let page_size = self.config.page_size.to_string();
        let mut files = Vec::new();
        let mut page_token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let response = self
                .send("list", |token| {
                    let mut query = vec![
                        ("q", q),
                        ("fields", FIELDS),
                        ("pageSize", page_size.as_str()),
                        ("supportsAllDrives", "true"),
                        ("includeItemsFromAllDrives", "true"),
                        ("corpora", "allDrives"),
                    ];
                    if let Some(t) = &page_token {
                        query.push(("pageToken", t));
                    }
                    self.client.get(&url).bearer_auth(token).query(&query)
                })
                .await?;
            let page: FileList = response.json().await.map_err(|e| {
                SourceError::service(
                    "drive_bad_response",
                    true,
                    format!("Google Drive list: {}", without_url(&e)),
                )
            })?;
            files.extend(page.files);
            match page.next_page_token.filter(|t| !t.is_empty()) {
                Some(next) => page_token = Some(next),
                None => return Ok(files),
            }
        }
        Err(SourceError::service(
            "drive_bad_response",
            true,
            format!("Google Drive list: more than {MAX_PAGES} pages"),
        ))
    }

    /// Streams the file's bytes into `dest` (created or truncated); returns the size.
    pub async fn download(&self, file_id: &str, dest: &Path) -> Result<u64, SourceError> {
        let url = format!("{}/drive/v3/files/{file_id}", self.config.base_url);
        let mut delays = self.config.retry_delays.iter();
        loop {
            let response = self
                .send("download", |token| {
                    self.client
                        .get(&url)
                        .bearer_auth(token)
                        .query(&[("alt", "media"), ("supportsAllDrives", "true")])
                })
                .await?;
            match write_body(response, dest).await {
                Ok(size) => return Ok(size),
                Err(e) => {
                    let Some(delay) = delays.next() else {
                        return Err(e);
                    };
                    tracing::warn!(error = %e, retry_in = ?delay, "Google Drive download broke off; retrying");
                    tokio::time::sleep(*delay).await;
                }
            }
        }
    }

    /// Sends the request `build` makes with a token, retrying what is worth retrying.
    async fn send(
        &self,
        what: &str,
        build: impl Fn(&str) -> RequestBuilder,
    ) -> Result<Response, SourceError> {
        let mut delays = self.config.retry_delays.iter();
        let mut refreshed = false;
        let started = std::time::Instant::now();
        let record = |outcome: &str| {
            metrics().api_call("google_drive", outcome, started.elapsed().as_secs_f64());
        };
        loop {
            let token = match self.token(false).await {
                Ok(token) => token,
                Err(e) => {
                    record("failed");
                    return Err(e);
                }
            };
            let (e, wait) = match build(&token).send().await {
                Ok(response) if response.status().is_success() => {
                    record("ok");
                    return Ok(response);
                }
                Ok(response) if response.status() == StatusCode::UNAUTHORIZED && !refreshed => {
                    // The cached token may have been revoked early: one fresh one, once.
                    refreshed = true;
                    self.token(true).await?;
                    continue;
                }
                Ok(response) => {
                    let wait = retry_after(response.headers());
                    (classify(what, response).await, wait)
                }
                Err(e) => (network(what, &e), None),
            };
            let Some(delay) = delays.next().filter(|_| e.is_transient()) else {
                record("failed");
                return Err(e);
            };
            metrics()
                .api_calls
                .with_label_values(&["google_drive", "retried"])
                .inc();
            let wait = wait.unwrap_or_default().max(*delay);
            tracing::warn!(what, error = %e, retry_in = ?wait, "Google Drive call failed; retrying");
            tokio::time::sleep(wait).await;
        }
    }
}

async fn write_body(mut response: Response, dest: &Path) -> Result<u64, SourceError> {
    let io = |e: std::io::Error| {
        SourceError::service("drive_temp_file", true, format!("{}: {e}", dest.display()))
    };
    let mut file = tokio::fs::File::create(dest).await.map_err(io)?;
    let mut size = 0u64;
    loop {
        let chunk = response
            .chunk()
            .await
            .map_err(|e| network("download", &e))?;
        let Some(chunk) = chunk else { break };
        file.write_all(&chunk).await.map_err(io)?;
        size += chunk.len() as u64;
    }
    file.flush().await.map_err(io)?;
    Ok(size)
}

/// A non-2xx answer: 429, 5xx and 403 rate limits are transient; the rest permanent.
async fn classify(what: &str, response: Response) -> SourceError {
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    let (message, reasons) = match serde_json::from_str::<ErrorBody>(&body) {
        Ok(b) => (
            b.error.message,
            b.error
                .errors
                .into_iter()
                .chain(b.error.details)
                .map(|r| r.reason)
                .collect::<Vec<_>>(),
        ),
        Err(_) => (body.chars().take(200).collect(), Vec::new()),
    };
    let rate_limited = reasons.iter().any(|r| {
        matches!(
            r.as_str(),
            "rateLimitExceeded" | "userRateLimitExceeded" | "RATE_LIMIT_EXCEEDED"
        )
    });
    let text = format!("Google Drive {what}: HTTP {}: {message}", status.as_u16());
    match status {
        StatusCode::TOO_MANY_REQUESTS => SourceError::service("drive_rate_limited", true, text),
        StatusCode::FORBIDDEN if rate_limited => {
            SourceError::service("drive_rate_limited", true, text)
        }
        s if s.is_server_error() => SourceError::service("drive_server_error", true, text),
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            SourceError::service("drive_unauthorized", false, text)
        }
        StatusCode::NOT_FOUND => SourceError::service("drive_not_found", false, text),
        _ => SourceError::service("drive_rejected", false, text),
    }
}

/// `'…'` for a Drive query: backslashes and single quotes escaped.
pub fn quoted(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}
