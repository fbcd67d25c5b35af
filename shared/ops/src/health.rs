//! `/health`, `/ready` and `/metrics` over HTTP (hyper), in the predecessor's shapes:
//! `/health` `{status, issues, warnings, metrics, timestamp}`, `/ready` `{ready, checks: {...}}`
//! with one boolean per configured dependency (`database`, `google_drive`, `assemblyai`,
//! `broker`, the worker's `batcher`) and `gpu` (reported, never required), `/metrics` in
//! Prometheus text. Nothing here can show a secret: the bodies are built from counters, booleans
//! and fixed texts.
//!
//! `/health` is the liveness probe, so it fails only for what a restart cures: a thread of the
//! process that died, or memory over MAX_MEMORY_GB. What the outside world does (a failing API, a
//! database away) is for `/ready`, the metrics and the alerts; were it to fail liveness, the
//! orchestrator would restart healthy workers in a loop.

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
use super::metrics;
use engine::system;

/// A boxed future that can be sent to another thread.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// One readiness check: `true` when the dependency answers now.
pub type Check = Box<dyn Fn() -> BoxFuture<'static, bool> + Send + Sync>;

/// A check that takes longer than this counts as failed: a probe must answer quickly.
const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

/// `/ready` answers from its last look for this long: probes from several places (kubelet,
/// a load balancer, an operator) then cost the dependencies one check, not one each.
const READY_CACHE: Duration = Duration::from_secs(5);

/// Liveness: `true` while a part of the process (a thread) is alive.
pub type Alive = Box<dyn Fn() -> bool + Send + Sync>;

static API_FAILURES_IN_WINDOW: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Set by the services' sampler: failed API calls within the last [`API_FAILURE_WINDOW`].
pub fn set_api_failures_in_window(failures: u64) {
    API_FAILURES_IN_WINDOW.store(failures, Ordering::Relaxed);
}

/// The window over which MAX_API_FAILURES counts failed calls.
pub const API_FAILURE_WINDOW: Duration = Duration::from_secs(300);

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

/// Limits past which `/health` reports an issue (MAX_MEMORY_GB, MAX_API_FAILURES).
#[derive(Debug, Clone, Copy, Default)]
pub struct Limits {
    pub max_memory_bytes: Option<u64>,
    pub max_api_failures: Option<u64>,
}

pub struct Health {
    service: &'static str,
    checks: Vec<(&'static str, Check)>,
    alive: Vec<(&'static str, Alive)>,
    limits: Limits,
    started: Instant,
    last_ready: tokio::sync::Mutex<Option<(Instant, bool, Value)>>,
}

impl Health {
    pub fn new(service: &'static str, limits: Limits) -> Self {
        Self {
            service,
            checks: Vec::new(),
            alive: Vec::new(),
            limits,
            started: Instant::now(),
            last_ready: tokio::sync::Mutex::new(None),
        }
    }

    /// Adds a readiness check for a configured dependency.
    pub fn check(mut self, name: &'static str, check: Check) -> Self {
        self.checks.push((name, check));
        self
    }

    /// Adds a part of the process that must be alive: a liveness check, and a readiness one.
    pub fn alive(mut self, name: &'static str, alive: Alive) -> Self {
        self.alive.push((name, alive));
        self
    }

    /// What a restart would cure, in words (empty when healthy).
    pub fn issues(&self) -> Vec<String> {
        let mut issues: Vec<String> = self
            .alive
            .iter()
            .filter(|(_, alive)| !alive())
            .map(|(name, _)| format!("the {name} thread has stopped"))
            .collect();
        if let (Some(max), Some(rss)) = (self.limits.max_memory_bytes, system::rss_bytes())
            && rss > max
        {
            issues.push(format!(
                "memory {:.2} GB over MAX_MEMORY_GB {:.2} GB",
                gb(rss),
                gb(max)
            ));
        }
        issues
    }

    /// What is wrong outside the process: reported, alerted, never a reason to restart.
    pub fn warnings(&self) -> Vec<String> {
        let failures = API_FAILURES_IN_WINDOW.load(Ordering::Relaxed);
        match self.limits.max_api_failures {
            Some(max) if failures > max => vec![format!(
                "{failures} failed API calls in the last {} min, over MAX_API_FAILURES {max}",
                API_FAILURE_WINDOW.as_secs() / 60
            )],
            _ => Vec::new(),
        }
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
            "warnings": self.warnings(),
            "metrics": {
                "service": self.service,
                "uptime_s": self.started.elapsed().as_secs(),
                "jobs_started": m.jobs_started.get(),
                "jobs_completed": m.jobs_completed.get(),
                "clips": clips,
                "results_stored": m.results_stored.get(),
                "api_failures": m.api_failures(),
                "api_failures_last_5_min": API_FAILURES_IN_WINDOW.load(Ordering::Relaxed),
                "memory_rss_mb": system::rss_bytes().map(|b| b / (1 << 20)),
                "gpu_memory_used_mb": system::gpu().map(|g| g.used_bytes / (1 << 20)),
            },
            "timestamp": rfc3339(SystemTime::now()),
        });
        (healthy, body)
    }

    /// The readiness checks, from the last look when it is under [`READY_CACHE`] old.
    pub async fn ready(&self) -> (bool, Value) {
        let mut last = self.last_ready.lock().await;
        if let Some((at, ready, body)) = last.as_ref()
            && at.elapsed() < READY_CACHE
        {
            return (*ready, body.clone());
        }
        let (ready, body) = self.look().await;
        *last = Some((Instant::now(), ready, body.clone()));
        (ready, body)
    }

    async fn look(&self) -> (bool, Value) {
        let mut checks = serde_json::Map::new();
        let mut ready = true;
        for (name, alive) in &self.alive {
            let ok = alive();
            ready &= ok;
            checks.insert((*name).to_string(), ok.into());
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// Liveness follows the process's own threads, not the outside world: API failures over
    /// the limit are a warning with a 200, a stopped thread is a 503 and makes it unready.
    #[tokio::test]
    async fn liveness_is_the_process_and_api_failures_only_warn() {
        let limits = Limits {
            max_memory_bytes: None,
            max_api_failures: Some(10),
        };
        let thread_alive = Arc::new(AtomicBool::new(true));
        let alive = Arc::clone(&thread_alive);
        let health = Health::new("test", limits)
            .alive("batcher", Box::new(move || alive.load(Ordering::Relaxed)));
        set_api_failures_in_window(11);
        let (ok, body) = health.health();
        assert!(ok, "{body}");
        assert_eq!(body["status"], "healthy");
        assert!(
            body["warnings"][0]
                .as_str()
                .unwrap_or_default()
                .contains("MAX_API_FAILURES")
        );
        assert!(health.ready().await.0);

        thread_alive.store(false, Ordering::Relaxed);
        let (ok, body) = health.health();
        assert!(!ok);
        assert!(
            body["issues"][0]
                .as_str()
                .unwrap_or_default()
                .contains("batcher"),
            "{body}"
        );
        let fresh = Health::new("test", limits).alive("batcher", Box::new(|| false));
        let (ready, body) = fresh.ready().await;
        assert!(!ready);
        assert_eq!(body["checks"]["batcher"], false);
        set_api_failures_in_window(0);
    }

    /// Probes within a few seconds of each other cost the dependency one check.
    #[tokio::test]
    async fn ready_answers_from_its_last_look_for_a_few_seconds() {
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&calls);
        let health = Health::new("test", Limits::default()).check(
            "database",
            Box::new(move || {
                counted.fetch_add(1, Ordering::Relaxed);
                Box::pin(async { true })
            }),
        );
        for _ in 0..5 {
            assert!(health.ready().await.0);
        }
        assert_eq!(calls.load(Ordering::Relaxed), 1);
    }
}
