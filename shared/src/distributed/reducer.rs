//! The reducer service: consumes `voice.results` in batches, upserts each batch in one
//! transaction, recounts the jobs it touched (closing those with all their results), and acks
//! the batch only after the commit. While the database is away it keeps the batch unacked and
//! retries; while the broker is away it reconnects. Either way no result is lost, and one
//! delivered twice changes nothing.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use futures_lite::StreamExt;
use lapin::Consumer;
use lapin::message::Delivery;
use lapin::options::BasicAckOptions;

use super::{Shutdown, poison, reconnecting};
use crate::config::Secret;
use crate::pipeline::ClipResult;
use crate::queue::topology::RESULTS;
use crate::queue::{Broker, BrokerError, decode};
use crate::store::{JobRow, Store};

pub struct ReducerService {
    pub amqp_url: Secret,
    pub store: Store,
    /// Results per transaction at most.
    pub batch: usize,
    /// How long a batch waits to fill once its first result is in.
    pub linger: Duration,
}

impl ReducerService {
    pub fn new(amqp_url: Secret, store: Store) -> Self {
        Self {
            amqp_url,
            store,
            batch: 1000,
            linger: Duration::from_millis(20),
        }
    }

    /// Consumes until `shutdown`, reconnecting to the broker whenever it goes away.
    pub async fn run(&self, shutdown: Shutdown) {
        let name = format!("voice-reducer-{}", std::process::id());
        reconnecting(&self.amqp_url, &name, &shutdown, |broker| {
            let (name, shutdown) = (name.clone(), shutdown.clone());
            async move { self.consume(&broker, &name, &shutdown).await }
        })
        .await;
    }

    async fn consume(
        &self,
        broker: &Broker,
        tag: &str,
        shutdown: &Shutdown,
    ) -> Result<(), BrokerError> {
        let prefetch = u16::try_from(self.batch * 2).unwrap_or(u16::MAX);
        let (_channel, mut consumer) = broker.consume(RESULTS, prefetch, tag).await?;
        tracing::info!(batch = self.batch, "consuming {RESULTS}");
        loop {
            let first = tokio::select! {
                () = shutdown.wait() => return Ok(()),
                next = consumer.next() => next,
            };
            let mut batch = match first {
                Some(Ok(delivery)) => vec![delivery],
                Some(Err(e)) => return Err(e.into()),
                None => return Err(BrokerError::Cancelled),
            };
            let lost = self.fill(&mut consumer, &mut batch).await;
            if !self.settle(broker, &batch, shutdown).await? {
                // Shutting down before the commit: the broker hands the batch out again.
                return Ok(());
            }
            if let Some(e) = lost {
                return Err(e);
            }
        }
    }

    /// Adds what arrives within `linger`, up to `batch`; returns why the stream ended, if it did.
    async fn fill(
        &self,
        consumer: &mut Consumer,
        batch: &mut Vec<Delivery>,
    ) -> Option<BrokerError> {
        let deadline = tokio::time::Instant::now() + self.linger;
        while batch.len() < self.batch {
            match tokio::time::timeout_at(deadline, consumer.next()).await {
                Err(_) => return None,
                Ok(Some(Ok(delivery))) => batch.push(delivery),
                Ok(Some(Err(e))) => return Some(e.into()),
                Ok(None) => return Some(BrokerError::Cancelled),
            }
        }
        None
    }

    /// Stores the batch and acks it: `Ok(true)` when done, `Ok(false)` when shutdown came first.
    async fn settle(
        &self,
        broker: &Broker,
        batch: &[Delivery],
        shutdown: &Shutdown,
    ) -> Result<bool, BrokerError> {
        let Some(last) = batch.last() else {
            return Ok(true);
        };
        let mut results = Vec::with_capacity(batch.len());
        for delivery in batch {
            match decode::<ClipResult>(&delivery.data) {
                Ok(result) => results.push(result),
                Err(e) => poison::settle(broker, delivery, RESULTS, &e).await?,
            }
        }
        let Some(jobs) = self.write(&results, shutdown).await else {
            return Ok(false);
        };
        for job in jobs.iter().filter(|j| !j.is_open()) {
            tracing::info!(
                job = %job.job_id,
                status = %job.status,
                done = job.done,
                total = job.total,
                matched = job.matched,
                failed = job.failed,
                "job closed"
            );
        }
        // One ack for the whole batch: every delivery up to the last one on this channel.
        last.ack(BasicAckOptions { multiple: true }).await?;
        Ok(true)
    }

    /// Writes until it succeeds (the database may be restarting), or until shutdown (`None`).
    async fn write(&self, results: &[ClipResult], shutdown: &Shutdown) -> Option<Vec<JobRow>> {
        let mut backoff = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(200))
            .with_max_delay(Duration::from_secs(5))
            .with_jitter()
            .without_max_times()
            .build();
        loop {
            match self.store.write_results(results).await {
                Ok(jobs) => return Some(jobs),
                Err(e) => {
                    let wait = backoff.next().unwrap_or(Duration::from_secs(5));
                    tracing::warn!(error = %e, results = results.len(), retry_in = ?wait, "storing results failed; they stay unacknowledged");
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        () = shutdown.wait() => return None,
                    }
                }
            }
        }
    }
}
