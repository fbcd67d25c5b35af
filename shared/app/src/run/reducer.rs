//! `reducer`: moves clip results from RabbitMQ to Postgres until stopped.

use std::sync::Arc;
use std::time::Duration;

use adapters::store::Store;
use anyhow::Context;
use backon::{ExponentialBuilder, Retryable};
use ops::Health;
use ops::health::broker_check;
use pipeline::services::Shutdown;
use pipeline::services::reducer::ReducerService;

use crate::config::Settings;
use crate::exit::Failure;
use crate::service::operate;

/// Runs a reducer until `shutdown`: a batch not yet stored stays in the queue.
pub async fn run_reducer(
    settings: &Settings,
    port: u16,
    shutdown: Shutdown,
) -> Result<(), Failure> {
    let (Ok(Some(broker)), Some(database_url)) = (settings.broker(), settings.database_url.clone())
    else {
        return Err(Failure::usage(
            "the reducer moves results from RabbitMQ to Postgres: set AMQP_URL and DATABASE_URL",
        ));
    };
    let connect = || Store::connect(&database_url, settings.database_ca_cert.as_deref());
    // The readiness probe has its own connections: a busy or stuck write batch never makes
    // the reducer look unready, and a probe never waits for a writer's connection.
    let (store, probe) = (
        connect().map_err(Failure::usage)?,
        connect().map_err(Failure::usage)?,
    );
    let alerter = settings.alerter("reducer").map_err(Failure::usage)?;
    let health = Health::new("reducer", settings.limits())
        .check("broker", broker_check())
        .check("database", probe.health_check());
    // Served while the database is awaited: the process is alive, just not ready.
    operate(health, port, alerter.clone(), settings, shutdown.clone()).await;
    // The database may start after us (compose, a restart): wait for it, within reason.
    let migrated = (|| store.migrate())
        .retry(
            ExponentialBuilder::default()
                .with_max_delay(Duration::from_secs(5))
                .with_max_times(30),
        )
        .notify(|e, wait| tracing::warn!(error = %e, retry_in = ?wait, "database not ready"));
    tokio::select! {
        done = migrated => done.context("migrating the database")?,
        () = shutdown.wait() => return Ok(()),
    }
    let mut service = ReducerService::new(Arc::new(broker), Arc::new(store));
    service.alerter = alerter;
    service.min_success_rate = settings.min_success_rate;
    service.max_job_duration = Duration::from_secs(settings.max_job_duration);
    service.run(shutdown).await;
    tracing::info!("reducer stopped");
    Ok(())
}
