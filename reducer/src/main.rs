//! The reducer: consumes clip results from RabbitMQ and writes them to Postgres, idempotently,
//! in batches; keeps each job's counters and closes the job when its last result is in.
//!
//! Exit codes: 0 after SIGTERM/SIGINT, 1 a fatal error, 2 bad settings.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use backon::{ExponentialBuilder, Retryable};
use clap::Parser;
use shared::distributed::Shutdown;
use shared::distributed::reducer::ReducerService;
use shared::ops::Health;
use shared::ops::health::{broker_check, database_check};
use shared::service::{ServiceArgs, operate, usage};
use shared::store::Store;

/// Stores the workers' results from RabbitMQ (AMQP_URL) in Postgres (DATABASE_URL), closes
/// each job once its clips are all in, and raises the job's alerts.
///
/// Settings come from the environment or a settings file (see the README). SIGTERM stops it
/// cleanly: a batch not yet stored stays in the queue for the next reducer.
#[derive(Debug, Parser)]
#[command(name = "reducer", version)]
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
    let (Ok(Some(broker)), Some(database_url)) = (settings.broker(), settings.database_url.clone())
    else {
        return Ok(usage(
            "the reducer moves results from RabbitMQ to Postgres: set AMQP_URL and DATABASE_URL",
        ));
    };
    let connect = || Store::connect(&database_url, settings.database_ca_cert.as_deref());
    // The readiness probe has its own connections: a busy or stuck write batch never makes
    // the reducer look unready, and a probe never waits for a writer's connection.
    let (store, probe) = match (connect(), connect()) {
        (Ok(store), Ok(probe)) => (store, probe),
        (Err(e), _) | (_, Err(e)) => return Ok(usage(&e.to_string())),
    };
    let alerter = match settings.alerter("reducer") {
        Ok(alerter) => alerter,
        Err(e) => return Ok(usage(&e.to_string())),
    };
    shared::service::runtime()
        .context("starting the async runtime")?
        .block_on(async {
            let shutdown = Shutdown::on_signals().context("installing signal handlers")?;
            let health = Health::new("reducer", settings.limits())
                .check("broker", broker_check())
                .check("database", database_check(&probe));
            let port = args.health_check_port;
            // Served while the database is awaited: the process is alive, just not ready.
            operate(health, port, alerter.clone(), &settings, shutdown.clone()).await;
            // The database may start after us (compose, a restart): wait for it, within reason.
            let migrated = (|| store.migrate())
                .retry(
                    ExponentialBuilder::default()
                        .with_max_delay(Duration::from_secs(5))
                        .with_max_times(30),
                )
                .notify(
                    |e, wait| tracing::warn!(error = %e, retry_in = ?wait, "database not ready"),
                );
            tokio::select! {
                done = migrated => done.context("migrating the database")?,
                () = shutdown.wait() => return anyhow::Ok(()),
            }
            let mut service = ReducerService::new(Arc::new(broker), Arc::new(store));
            service.alerter = alerter;
            service.min_success_rate = settings.min_success_rate;
            service.max_job_duration = Duration::from_secs(settings.max_job_duration);
            service.run(shutdown).await;
            anyhow::Ok(())
        })?;
    tracing::info!("reducer stopped");
    Ok(ExitCode::SUCCESS)
}
