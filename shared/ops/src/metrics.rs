//! The process's Prometheus metrics (DESIGN §10), every name under `voice_diarization_`. One
//! registry per process, reachable from anywhere through [`metrics`]: the API clients, the
//! worker and the reducer record into it; `/metrics` renders it.

use std::sync::OnceLock;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

const PREFIX: &str = "voice_diarization";

pub struct Metrics {
    registry: Registry,
    /// Jobs started (the predecessor's `voice_diarization_jobs_total`).
    pub jobs_started: IntCounter,
    pub jobs_completed: IntCounter,
    /// Jobs that failed, by reason (`publish`, `timed_out`, `low_success_rate`).
    pub jobs_failed: IntCounterVec,
    /// Clips by outcome (`matched`, `no_match`, `no_speech`, `failed`).
    pub clips: IntCounterVec,
    /// Calls to outside services by service (`assemblyai`, `google_drive`, `webhook`) and
    /// outcome (`ok`, `retried`, `failed`).
    pub api_calls: IntCounterVec,
    pub api_latency: HistogramVec,
    pub clip_seconds: Histogram,
    /// The best score of each decided speaker.
    pub match_scores: Histogram,
    pub results_stored: IntCounter,
    /// Redelivered tasks whose clip the job had already completed: acked, not done again.
    pub duplicates_skipped: IntCounter,
    pub memory_rss_bytes: IntGauge,
    pub gpu_memory_used_bytes: IntGauge,
    /// Messages waiting, by queue, as last seen by the dispatcher.
    pub queue_depth: IntGaugeVec,
    pub alerts: IntCounterVec,
}

fn opts(name: &str, help: &str) -> Opts {
    Opts::new(name, help).namespace(PREFIX)
}

impl Metrics {
    fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let latency = HistogramOpts::from(opts(
            "api_latency_seconds",
            "Latency of calls to outside services, retries included",
        ))
        .buckets(vec![
            0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
        ]);
        let m = Self {
            jobs_started: IntCounter::with_opts(opts(
                "jobs_total",
                "Total number of jobs started",
            ))?,
            jobs_completed: IntCounter::with_opts(opts(
                "jobs_completed_total",
                "Jobs whose every clip has a result",
            ))?,
            jobs_failed: IntCounterVec::new(
                opts("jobs_failed_total", "Jobs that failed, by reason"),
                &["reason"],
            )?,
            clips: IntCounterVec::new(
                opts("clips_total", "Clips processed, by outcome"),
                &["outcome"],
            )?,
            api_calls: IntCounterVec::new(
                opts(
                    "api_calls_total",
                    "Calls to outside services, by service and outcome",
                ),
                &["service", "outcome"],
            )?,
            api_latency: HistogramVec::new(latency, &["service"])?,
            clip_seconds: Histogram::with_opts(
                HistogramOpts::from(opts(
                    "clip_processing_seconds",
                    "Time from a clip task's start to its result",
                ))
                .buckets(vec![
                    0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 600.0,
                ]),
            )?,
            match_scores: Histogram::with_opts(
                HistogramOpts::from(opts(
                    "match_score",
                    "Best cosine score of each speaker against the enrolled profiles",
                ))
                .buckets((0..=20).map(|i| -1.0 + 0.1 * f64::from(i)).collect()),
            )?,
            results_stored: IntCounter::with_opts(opts(
                "results_stored_total",
                "Clip results committed to Postgres",
            ))?,
            duplicates_skipped: IntCounter::with_opts(opts(
                "duplicate_tasks_skipped_total",
                "Redelivered clip tasks already completed in their job, acked without redoing them",
            ))?,
            memory_rss_bytes: IntGauge::with_opts(opts(
                "memory_rss_bytes",
                "Resident memory of this process",
            ))?,
            gpu_memory_used_bytes: IntGauge::with_opts(opts(
                "gpu_memory_used_bytes",
                "GPU memory in use on the first device (0 without a GPU)",
            ))?,
            queue_depth: IntGaugeVec::new(
                opts("queue_depth", "Messages ready in a queue, as last seen"),
                &["queue"],
            )?,
            alerts: IntCounterVec::new(
                opts("alerts_total", "Alerts sent, by channel and outcome"),
                &["channel", "outcome"],
            )?,
            registry,
        };
        m.registry.register(Box::new(m.jobs_started.clone()))?;
        m.registry.register(Box::new(m.jobs_completed.clone()))?;
        m.registry.register(Box::new(m.jobs_failed.clone()))?;
        m.registry.register(Box::new(m.clips.clone()))?;
        m.registry.register(Box::new(m.api_calls.clone()))?;
        m.registry.register(Box::new(m.api_latency.clone()))?;
        m.registry.register(Box::new(m.clip_seconds.clone()))?;
        m.registry.register(Box::new(m.match_scores.clone()))?;
        m.registry.register(Box::new(m.results_stored.clone()))?;
        m.registry
            .register(Box::new(m.duplicates_skipped.clone()))?;
        m.registry.register(Box::new(m.memory_rss_bytes.clone()))?;
        m.registry
            .register(Box::new(m.gpu_memory_used_bytes.clone()))?;
        m.registry.register(Box::new(m.queue_depth.clone()))?;
        m.registry.register(Box::new(m.alerts.clone()))?;
        // Zeros from the start: a rate over a series that appears late misses its first step.
        for outcome in ["matched", "no_match", "no_speech", "failed"] {
            m.clips.with_label_values(&[outcome]);
        }
        Ok(m)
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        // Encoding into a Vec cannot fail for the text format.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }

    /// One finished call to an outside service.
    pub fn api_call(&self, service: &str, outcome: &str, seconds: f64) {
        self.api_calls.with_label_values(&[service, outcome]).inc();
        self.api_latency
            .with_label_values(&[service])
            .observe(seconds);
    }

    /// Failed calls to outside services since start.
    pub fn api_failures(&self) -> u64 {
        ["assemblyai", "google_drive"]
            .iter()
            .map(|s| self.api_calls.with_label_values(&[s, "failed"]).get())
            .sum()
    }
}

/// The process's metrics.
pub fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    // The names are fixed here and valid: registering them cannot fail.
    METRICS.get_or_init(|| Metrics::new().unwrap_or_else(|e| panic!("metric definitions: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_is_rendered_under_the_prefix() {
        let m = metrics();
        m.jobs_started.inc();
        m.api_call("assemblyai", "ok", 0.3);
        m.clips.with_label_values(&["matched"]).inc();
        let text = m.render();
        assert!(text.contains("voice_diarization_jobs_total"), "{text}");
        assert!(
            text.contains(
                "voice_diarization_api_calls_total{outcome=\"ok\",service=\"assemblyai\"}"
            )
        );
        assert!(text.contains("voice_diarization_api_latency_seconds_bucket"));
        for line in text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            assert!(line.starts_with("voice_diarization_"), "{line}");
        }
    }
}
