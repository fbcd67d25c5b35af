//! `dispatcher validate`: the pre-flight checks (settings, model and runtime, GPU, source,
//! database, AssemblyAI, broker, alert channels), a ✔/✘ table with the fix for each ✘, exit 3
//! when any fails. `dispatcher run` runs the same checks first.

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use adapters::assemblyai::AssemblyAi;
use adapters::broker::Broker;
use adapters::store::Store;
use app::config::{Settings, SourceKind};
use engine::model::Manifest;
use engine::system;
use serde::Serialize;

use crate::Failure;
use crate::cli::ValidateArgs;

/// A check that takes longer than this failed.
const CHECK_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, Serialize)]
pub struct Check {
    pub name: &'static str,
    /// `None`: not configured, nothing to check.
    pub ok: Option<bool>,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<&'static str>,
    /// Passed, but something wants attention (it does not stop a run).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub warning: bool,
}

impl Check {
    fn pass(name: &'static str, detail: impl Into<String>) -> Self {
        Self {
            name,
            ok: Some(true),
            detail: detail.into(),
            fix: None,
            warning: false,
        }
    }

    fn warn(name: &'static str, detail: impl Into<String>, fix: &'static str) -> Self {
        Self {
            name,
            ok: Some(true),
            detail: detail.into(),
            fix: Some(fix),
            warning: true,
        }
    }

    fn fail(name: &'static str, detail: impl Into<String>, fix: &'static str) -> Self {
        Self {
            name,
            ok: Some(false),
            detail: detail.into(),
            fix: Some(fix),
            warning: false,
        }
    }

    fn skip(name: &'static str, detail: impl Into<String>) -> Self {
        Self {
            name,
            ok: None,
            detail: detail.into(),
            fix: None,
            warning: false,
        }
    }
}

pub fn run(config: Option<&Path>, args: &ValidateArgs) -> anyhow::Result<()> {
    let checks = match Settings::load(config) {
        Ok(settings) => checks(&settings)?,
        Err(e) => vec![Check::fail(
            "settings",
            e.to_string(),
            "fix the setting named (environment, config/default.toml or --config)",
        )],
    };
    let ok = checks.iter().all(|c| c.ok != Some(false));
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({"ok": ok, "checks": checks}))?
        );
    } else {
        print_table(&checks);
    }
    if ok {
        Ok(())
    } else {
        Err(Failure::Validation("pre-flight validation failed".into()).into())
    }
}

/// The checks `dispatcher run` makes first: quiet when all pass, the table when one fails.
pub fn before_run(settings: &Settings) -> anyhow::Result<()> {
    let checks = checks(settings)?;
    if checks.iter().all(|c| c.ok != Some(false)) {
        tracing::debug!("pre-flight validation passed");
        return Ok(());
    }
    print_table(&checks);
    Err(
        Failure::Validation("pre-flight validation failed (--skip-validation runs anyway)".into())
            .into(),
    )
}

fn print_table(checks: &[Check]) {
    for c in checks {
        let mark = match c.ok {
            Some(true) if c.warning => "!",
            Some(true) => "✔",
            Some(false) => "✘",
            None => "–",
        };
        println!("{mark} {:<12} {}", c.name, c.detail);
        if let Some(fix) = c.fix {
            println!("  {:<12} fix: {fix}", "");
        }
    }
}

async fn within<T>(what: impl Future<Output = T>) -> Option<T> {
    tokio::time::timeout(CHECK_TIMEOUT, what).await.ok()
}

pub fn checks(settings: &Settings) -> anyhow::Result<Vec<Check>> {
    let mut checks = vec![Check::pass(
        "settings",
        format!(
            "source {}, turns from {}, {}",
            settings.voice_source,
            settings.voice_diarizer,
            if settings.amqp_url.is_some() {
                "distributed (AMQP_URL)"
            } else {
                "standalone"
            }
        ),
    )];
    checks.push(match settings.encoders() {
        Ok(encoders) => Check::pass("model", format!("{} on ONNX Runtime", encoders.describe())),
        Err(e) => Check::fail(
            "model",
            e.to_string(),
            "run `make setup` for the runtime library, or set ORT_DYLIB_PATH / VOICE_MODEL",
        ),
    });
    checks.push(match system::gpu() {
        Some(gpu) => Check::pass(
            "gpu",
            format!(
                "{}, {} of {} MiB free",
                gpu.name,
                gpu.free_bytes >> 20,
                gpu.total_bytes >> 20
            ),
        ),
        None => Check::skip("gpu", "none: the model runs on the CPU"),
    });
    let runtime = app::service::runtime()?;
    runtime.block_on(async {
        checks.push(source_check(settings).await);
        checks.push(database_check(settings).await);
        checks.push(enrollment_check(settings).await);
        checks.push(assemblyai_check(settings).await);
        checks.push(broker_check(settings).await);
    });
    let channels = [
        &settings.slack_webhook_url,
        &settings.discord_webhook_url,
        &settings.monitoring_webhook_url,
    ]
    .iter()
    .filter(|u| u.is_some())
    .count();
    checks.push(if channels == 0 {
        Check::skip("alerts", "no webhook: alerts are only logged")
    } else {
        Check::pass("alerts", format!("{channels} webhook(s), https"))
    });
    Ok(checks)
}

async fn source_check(settings: &Settings) -> Check {
    let fix_drive = "share the folders with the service account and check GOOGLE_DRIVE_CREDENTIALS";
    let source = match settings.clip_source() {
        Ok(source) => source,
        Err(e) => return Check::fail("source", e.to_string(), fix_drive),
    };
    let local = settings.voice_source == SourceKind::Local;
    match within(source.check()).await {
        Some(Ok(())) if local => Check::pass(
            "source",
            format!("local folder {}", settings.voice_local_root.display()),
        ),
        Some(Ok(())) => Check::pass("source", "Google Drive: the service account has a token"),
        Some(Err(e)) if local => Check::fail(
            "source",
            e.to_string(),
            "set VOICE_LOCAL_ROOT to the folder that holds <location_id>/clips",
        ),
        Some(Err(e)) => Check::fail("source", e.to_string(), fix_drive),
        None => Check::fail("source", "no answer in time", fix_drive),
    }
}

async fn database_check(settings: &Settings) -> Check {
    let fix =
        "check DATABASE_URL (Supabase: Project settings → Database) and that the server is up";
    let Some(url) = &settings.database_url else {
        return if settings.amqp_url.is_some() {
            Check::fail(
                "database",
                "DATABASE_URL is not set",
                "set DATABASE_URL: distributed mode keeps jobs and results in Postgres",
            )
        } else {
            Check::skip(
                "database",
                "not configured: results go to the output folder",
            )
        };
    };
    let store = match Store::connect(url, settings.database_ca_cert.as_deref()) {
        Ok(store) => store,
        Err(e) => return Check::fail("database", e.to_string(), fix),
    };
    match within(store.ping()).await {
        Some(Ok(())) => Check::pass("database", url.redacted()),
        Some(Err(e)) => Check::fail("database", e.to_string(), fix),
        None => Check::fail("database", "no answer in time", fix),
    }
}

/// Warns about every location whose stored enrollment left samples out or found employees who
/// sound alike (the workers would decide with it as it is).
async fn enrollment_check(settings: &Settings) -> Check {
    let Some(url) = &settings.database_url else {
        return Check::skip(
            "enrollment",
            "standalone: every run checks the voice samples and logs what to fix",
        );
    };
    let Ok(manifest) = Manifest::load(&settings.model_path()) else {
        return Check::skip("enrollment", "no model manifest to look the profiles up by");
    };
    let Ok(store) = Store::connect(url, settings.database_ca_cert.as_deref()) else {
        return Check::skip("enrollment", "no database (see above)");
    };
    let stored = match within(store.calibrations(&manifest.id)).await {
        Some(Ok(stored)) => stored,
        // No table yet, or no answer: the database check says which.
        _ => return Check::skip("enrollment", "no enrollment stored yet"),
    };
    let issues: Vec<String> = stored
        .iter()
        .flat_map(|(location, c)| {
            c.issues()
                .into_iter()
                .map(move |i| format!("{location}: {i}"))
        })
        .collect();
    if issues.is_empty() {
        Check::pass(
            "enrollment",
            format!(
                "{} location(s) enrolled with {}, no voice sample to fix",
                stored.len(),
                manifest.id
            ),
        )
    } else {
        Check::warn(
            "enrollment",
            issues.join("\n               "),
            "replace the samples named, then run `dispatcher enroll <LOCATION_ID>`",
        )
    }
}

async fn assemblyai_check(settings: &Settings) -> Check {
    let fix = "check AAI_API_KEY (and AAI_BASE_URL for the EU endpoint)";
    let Some(config) = settings.assemblyai() else {
        return Check::skip("assemblyai", "not used: the local diarizer finds the turns");
    };
    let mut config = config;
    config.retry_delays = Vec::new();
    let client = match AssemblyAi::new(config) {
        Ok(client) => client,
        Err(e) => return Check::fail("assemblyai", e.to_string(), fix),
    };
    match within(client.check()).await {
        Some(Ok(())) => Check::pass("assemblyai", "the key is accepted"),
        Some(Err(e)) => Check::fail("assemblyai", e.to_string(), fix),
        None => Check::fail("assemblyai", "no answer in time", fix),
    }
}

async fn broker_check(settings: &Settings) -> Check {
    let fix = "check AMQP_URL and that RabbitMQ is up";
    let broker = match settings.broker() {
        Ok(Some(broker)) => broker,
        Ok(None) => return Check::skip("broker", "not configured: standalone mode"),
        Err(e) => return Check::fail("broker", e.to_string(), fix),
    };
    let url = &broker.url;
    match within(Broker::connect(&broker, "voice-validate")).await {
        Some(Ok(broker)) => {
            broker.close().await;
            Check::pass("broker", url.redacted())
        }
        Some(Err(e)) => Check::fail("broker", e.to_string(), fix),
        None => Check::fail("broker", "no answer in time", fix),
    }
}
