//! `/health`, `/ready` and `/metrics` over HTTP (hyper), in the predecessor's shapes:
//! `/health` `{status, issues, metrics, timestamp}`, `/ready` `{ready, checks: {...}}` with one
//! boolean per configured dependency (`database`, `google_drive`, `assemblyai`, `broker`) and
//! `gpu` (reported, never required), `/metrics` in Prometheus text. Nothing here can show a
//! secret: the bodies are built from counters, booleans and fixed texts.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

use super::alerts::rfc3339;
use super::{metrics, system};
use crate::source::BoxFuture;
use crate::store::Store;

/// One readiness check: `true` when the dependency answers now.
pub type Check = Box<dyn Fn() -> BoxFuture<'static, bool> + Send + Sync>;

/// A check that takes longer than this counts as failed: a probe must answer quickly.
const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

static BROKER_UP: AtomicBool = AtomicBool::new(false);

/// Set by the services' connection loop: whether they hold a broker connection now.
pub fn set_broker_connected(up: bool) {
    BROKER_UP.store(up, Ordering::Relaxed);
}

pub fn broker_connected() -> bool {
    BROKER_UP.load(Ordering::Relaxed)
}

/// The `broker` check of a service: whether its consume loop holds a connection now.
pub fn broker_check() -> Check {
    Box::new(|| Box::pin(async { broker_connected() }))
}

/// The `database` check: the store answers `SELECT 1`.
pub fn database_check(store: &Store) -> Check {
    let store = store.clone();
    Box::new(move || {
        let store = store.clone();
        Box::pin(async move { store.ping().await.is_ok() })
    })
}

/// Limits past which `/health` reports an issue (MAX_MEMORY_GB, MAX_API_FAILURES).
#[derive(Debug, Clone, Copy, Default)]
pub struct Limits {
    pub max_memory_bytes: Option<u64>,
    pub max_api_failures: Option<u64>,
}

pub struct Health {
    service: &'static str,
    checks: Vec<(&'static str, Check)>,
    limits: Limits,
    started: Instant,
}

impl Health {
    pub fn new(service: &'static str, limits: Limits) -> Self {
        Self {
            service,
            checks: Vec::new(),
            limits,
            started: Instant::now(),
        }
    }

    /// Adds a readiness check for a configured dependency.
    pub fn check(mut self, name: &'static str, check: Check) -> Self {
        self.checks.push((name, check));
        self
    }

    /// What is wrong now, in words (empty when healthy).
    pub fn issues(&self) -> Vec<String> {
        let mut issues = Vec::new();
        if let (Some(max), Some(rss)) = (self.limits.max_memory_bytes, system::rss_bytes())
            && rss > max
        {
            issues.push(format!(
                "memory {:.2} GB over MAX_MEMORY_GB {:.2} GB",
                gb(rss),
                gb(max)
            ));
        }
        let failures = metrics().api_failures();
        if let Some(max) = self.limits.max_api_failures
            && failures > max
        {
            issues.push(format!(
                "{failures} failed API calls, over MAX_API_FAILURES {max}"
            ));
        }
        issues
    }

    pub fn health(&self) -> (bool, Value) {
        let m = metrics();
        let clips: serde_json::Map<String, Value> = ["matched", "no_match", "no_speech", "failed"]
            .iter()
            .map(|o| {
                (
                    (*o).to_string(),
                    m.clips.with_label_values(&[o]).get().into(),
                )
            })
            .collect();
        let issues = self.issues();
        let healthy = issues.is_empty();
        let body = json!({
            "status": if healthy { "healthy" } else { "unhealthy" },
            "issues": issues,
            "metrics": {
                "service": self.service,
                "uptime_s": self.started.elapsed().as_secs(),
                "jobs_started": m.jobs_started.get(),
                "jobs_completed": m.jobs_completed.get(),
                "clips": clips,
                "results_stored": m.results_stored.get(),
                "api_failures": m.api_failures(),
                "memory_rss_mb": system::rss_bytes().map(|b| b / (1 << 20)),
                "gpu_memory_used_mb": system::gpu().map(|g| g.used_bytes / (1 << 20)),
            },
            "timestamp": rfc3339(SystemTime::now()),
        });
        (healthy, body)
    }

    pub async fn ready(&self) -> (bool, Value) {
        let mut checks = serde_json::Map::new();
        let mut ready = true;
        for (name, check) in &self.checks {
            let ok = tokio::time::timeout(CHECK_TIMEOUT, check())
                .await
                .unwrap_or(false);
            ready &= ok;
            checks.insert((*name).to_string(), ok.into());
        }
        checks.insert("gpu".into(), system::gpu().is_some().into());
        (ready, json!({"ready": ready, "checks": checks}))
    }

    async fn respond(&self, request: Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
        if request.method() != Method::GET {
            return text(StatusCode::METHOD_NOT_ALLOWED, "GET only\n");
        }
        match request.uri().path() {
            "/health" => {
                let (ok, body) = self.health();
                json_response(ok, &body)
            }
            "/ready" => {
                let (ok, body) = self.ready().await;
                json_response(ok, &body)
            }
            // The memory gauges are kept current by `service::operate`'s sampler.
            "/metrics" => {
                let mut response = text(StatusCode::OK, &metrics().render());
                response.headers_mut().insert(
                    hyper::header::CONTENT_TYPE,
                    hyper::header::HeaderValue::from_static("text/plain; version=0.0.4"),
                );
                response
            }
            _ => text(StatusCode::NOT_FOUND, "/health, /ready or /metrics\n"),
        }
    }
}

fn gb(bytes: u64) -> f64 {
    bytes as f64 / 1e9
}

fn text(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r
}

fn json_response(ok: bool, body: &Value) -> Response<Full<Bytes>> {
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut r = text(status, &format!("{body}\n"));
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}

/// Serves the endpoints on `0.0.0.0:port` until `stop` completes; returns the bound address
/// (port 0 picks a free one).
pub async fn serve(
    health: Arc<Health>,
    port: u16,
    stop: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(("0.0.0.0", port)).await?;
    let address = listener.local_addr()?;
    tokio::spawn(async move {
        tokio::pin!(stop);
        loop {
            let stream = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        tracing::warn!(error = %e, "health endpoint: accept failed");
                        continue;
                    }
                },
                () = &mut stop => break,
            };
            let health = Arc::clone(&health);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    let health = Arc::clone(&health);
                    async move { Ok::<_, Infallible>(health.respond(request).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Ok(address)
}
