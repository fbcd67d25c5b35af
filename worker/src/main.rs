//! The worker: consumes clip tasks from RabbitMQ, decodes, finds speaker turns, embeds and
//! decides, and publishes one result per clip.
//!
//! It checks its model and runtime before anything else, so a pod without them fails at start.
//! Exit codes: 0 after SIGTERM/SIGINT (clips in flight finished or handed back), 1 a fatal
//! error, 2 bad settings.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use shared::distributed::Shutdown;
use shared::distributed::worker::WorkerService;
use shared::ops::Health;
use shared::ops::health::{broker_check, database_check};
use shared::service::{ServiceArgs, operate, usage};
use shared::store::Store;

/// Takes clip tasks from RabbitMQ (AMQP_URL), finds who speaks in each clip, matches the voices
/// against the location's employees and publishes one result per clip.
///
/// Settings come from the environment or a settings file (see the README): the clip source,
/// the speaker model, AssemblyAI. SIGTERM stops it cleanly: the clips in hand are finished, or
/// handed back to the queue.
#[derive(Debug, Parser)]
#[command(name = "worker", version)]
struct Cli {
    #[command(flatten)]
    service: ServiceArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    run(&cli.service).unwrap_or_else(|error| {
        eprintln!("error: {error:#}");
        ExitCode::FAILURE
    })
}

fn run(args: &ServiceArgs) -> anyhow::Result<ExitCode> {
    let settings = match shared::service::start(args) {
        Ok(settings) => settings,
        Err(code) => return Ok(code),
    };
    let Ok(Some(broker)) = settings.broker() else {
        return Ok(usage(
            "the worker consumes clip tasks from RabbitMQ: set AMQP_URL \
             (without a broker, `dispatcher run` processes clips in one process)",
        ));
    };
    let source = match settings.clip_source() {
        Ok(source) => source,
        Err(e) => return Ok(usage(&e.to_string())),
    };
    // With a database, the roster is its `workers` table and profiles are shared through it.
    let store = match &settings.database_url {
        Some(url) => match Store::connect(url, settings.database_ca_cert.as_deref()) {
            Ok(store) => Some(store),
            Err(e) => return Ok(usage(&e.to_string())),
        },
        None => None,
    };
    let alerter = match settings.alerter("worker") {
        Ok(alerter) => alerter,
        Err(e) => return Ok(usage(&e.to_string())),
    };
    let (service, batcher_thread) = WorkerService::from_settings(
        &settings,
        Arc::new(broker),
        Arc::clone(&source),
        store.clone(),
        alerter.clone(),
    )?;
    let batcher_thread = Arc::new(batcher_thread);
    let mut health = Health::new("worker", settings.limits())
        .alive("batcher", Box::new(move || !batcher_thread.is_finished()))
        .check("broker", broker_check());
    if let Some(store) = &store {
        health = health.check("database", database_check(store));
    }
    if settings.voice_source == "gdrive" {
        let source = Arc::clone(&source);
        health = health.check(
            "google_drive",
            Box::new(move || {
                let source = Arc::clone(&source);
                Box::pin(async move { source.check().await.is_ok() })
            }),
        );
    }
    if let Some(transcriber) = &service.transcriber {
        let probe = Arc::clone(transcriber);
        health = health.check(
            "assemblyai",
            Box::new(move || {
                let probe = Arc::clone(&probe);
                Box::pin(async move { probe.check().await.is_ok() })
            }),
        );
    }
    let service = Arc::new(service);
    shared::service::runtime()
        .context("starting the async runtime")?
        .block_on(async {
            let shutdown = Shutdown::on_signals().context("installing signal handlers")?;
            let port = args.health_check_port;
            operate(health, port, alerter, &settings, shutdown.clone()).await;
            service.run(shutdown).await;
            anyhow::Ok(())
        })?;
    tracing::info!("worker stopped");
    Ok(ExitCode::SUCCESS)
}
