//! `worker`: consumes clip tasks from RabbitMQ until stopped.

use std::sync::Arc;

use adapters::store::Store;
use anyhow::Context;
use ops::Health;
use ops::health::broker_check;
use pipeline::services::Shutdown;
use pipeline::source::ClipSource;

use crate::config::{Settings, SourceKind};
use crate::exit::Failure;
use crate::service::operate;
use crate::wiring::worker_service;

/// Runs a worker until `shutdown`: the clips in hand are finished, or handed back.
pub async fn run_worker(settings: &Settings, port: u16, shutdown: Shutdown) -> Result<(), Failure> {
    let Ok(Some(broker)) = settings.broker() else {
        return Err(Failure::usage(
            "the worker consumes clip tasks from RabbitMQ: set AMQP_URL \
             (without a broker, `dispatcher run` processes clips in one process)",
        ));
    };
    let source = settings.clip_source().map_err(Failure::usage)?;
    // With a database, the roster is its `workers` table and profiles are shared through it.
    let store = match &settings.database_url {
        Some(url) => Some(
            Store::connect(url, settings.database_ca_cert.as_deref()).map_err(Failure::usage)?,
        ),
        None => None,
    };
    let alerter = settings.alerter("worker").map_err(Failure::usage)?;
    let (service, batcher_thread) = worker_service(
        settings,
        Arc::new(broker),
        Arc::clone(&source),
        store.clone(),
        alerter.clone(),
    )
    .context("starting the worker")?;
    let batcher_thread = Arc::new(batcher_thread);
    let mut health = Health::new("worker", settings.limits())
        .alive("batcher", Box::new(move || !batcher_thread.is_finished()))
        .check("broker", broker_check());
    if let Some(store) = &store {
        health = health.check("database", store.health_check());
    }
    if settings.voice_source == SourceKind::Gdrive {
        health = health.check("google_drive", source_check(source));
    }
    if service.transcriber.is_remote() {
        let probe = Arc::clone(&service.transcriber);
        health = health.check(
            probe.name(),
            Box::new(move || {
                let probe = Arc::clone(&probe);
                Box::pin(async move { probe.check().await.is_ok() })
            }),
        );
    }
    operate(health, port, alerter, settings, shutdown.clone()).await;
    Arc::new(service).run(shutdown).await;
    tracing::info!("worker stopped");
    Ok(())
}

/// The readiness check of a remote clip source: it answers and takes the credentials.
fn source_check(source: Arc<dyn ClipSource>) -> ops::health::Check {
    Box::new(move || {
        let source = Arc::clone(&source);
        Box::pin(async move { source.check().await.is_ok() })
    })
}
