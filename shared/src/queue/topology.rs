//! The broker's queues, in one place (DESIGN §8). Every binary declares them at start; declaring
//! is idempotent as long as the arguments stay the same, so change them only with new names.
//!
//! ```text
//! dispatcher ─▶ voice.clips ──▶ worker ─▶ voice.results ──▶ reducer ─▶ Postgres
//!                 │  ▲                        │
//!                 │  └─ voice.clips.retry.<d> (TTL d, then dead-lettered back)
//!                 └──────▶ voice.dlx ─▶ voice.clips.dlq / voice.results.dlq
//!                                     └─▶ voice.clips.dead ──▶ reducer (a `failed` result)
//! ```

use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{Channel, ExchangeKind};

pub const CLIPS: &str = "voice.clips";
pub const RESULTS: &str = "voice.results";
pub const DEAD_LETTER_EXCHANGE: &str = "voice.dlx";
/// A copy of every clip task that is dead-lettered, whoever did it (the broker over the delivery
/// limit, a worker for poison or spent retries): the reducer turns each into a `failed` result,
/// so that its job can close. The DLQ keeps its own copy for the operator.
pub const DEAD_CLIPS: &str = "voice.clips.dead";

/// A message handed back to a queue this many times (consumers that died holding it) is
/// dead-lettered by the broker itself, with `x-first-death-reason: delivery_limit`.
pub const DELIVERY_LIMIT: i64 = 10;

/// Tries of a message nobody can decode before it goes to the dead-letter queue. More than one,
/// so that during a rolling upgrade a newer consumer may still take it.
pub const POISON_ATTEMPTS: u32 = 3;

/// Waits before the second, third, … try of a clip after a transient failure; one more failure
/// after the last gives up (a `failed` result, and the task in the dead-letter queue).
pub const RETRY_DELAYS_S: [u32; 3] = [10, 60, 300];

pub fn dead_letter_queue(queue: &str) -> String {
    format!("{queue}.dlq")
}

/// The delay queue for the try after `attempt` (1-based); `None` once the retries are spent.
pub fn retry_queue(attempt: u32) -> Option<String> {
    let delay = RETRY_DELAYS_S.get(usize::try_from(attempt).ok()?.checked_sub(1)?)?;
    Some(format!("{CLIPS}.retry.{delay}s"))
}

fn text(value: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(value))
}

/// A quorum work queue that dead-letters into the DLX, under its own DLQ's routing key.
fn work_queue_arguments(queue: &str) -> FieldTable {
    let mut args = FieldTable::default();
    args.insert("x-queue-type".into(), text("quorum"));
    args.insert("x-dead-letter-exchange".into(), text(DEAD_LETTER_EXCHANGE));
    args.insert(
        "x-dead-letter-routing-key".into(),
        text(&dead_letter_queue(queue)),
    );
    args.insert(
        "x-delivery-limit".into(),
        AMQPValue::LongLongInt(DELIVERY_LIMIT),
    );
    args
}

/// Declares exchanges, queues and bindings; safe to run from every process at every start.
pub async fn declare(channel: &Channel) -> lapin::Result<()> {
    let durable = QueueDeclareOptions::durable();
    channel
        .exchange_declare(
            DEAD_LETTER_EXCHANGE.into(),
            ExchangeKind::Direct,
            ExchangeDeclareOptions {
                durable: true,
                ..ExchangeDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await?;
    for queue in [CLIPS, RESULTS] {
        channel
            .queue_declare(queue.into(), durable, work_queue_arguments(queue))
            .await?;
        let dlq = dead_letter_queue(queue);
        let mut args = FieldTable::default();
        args.insert("x-queue-type".into(), text("quorum"));
        channel
            .queue_declare(dlq.as_str().into(), durable, args)
            .await?;
        channel
            .queue_bind(
                dlq.as_str().into(),
                DEAD_LETTER_EXCHANGE.into(),
                dlq.as_str().into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
    }
    let mut args = FieldTable::default();
    args.insert("x-queue-type".into(), text("quorum"));
    channel
        .queue_declare(DEAD_CLIPS.into(), durable, args)
        .await?;
    let dlq = dead_letter_queue(CLIPS);
    channel
        .queue_bind(
            DEAD_CLIPS.into(),
            DEAD_LETTER_EXCHANGE.into(),
            dlq.as_str().into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    for attempt in 1..=RETRY_DELAYS_S.len() as u32 {
        let Some(queue) = retry_queue(attempt) else {
            continue;
        };
        // Classic queues: one TTL for the whole queue expires messages in order, at its head.
        let mut args = FieldTable::default();
        args.insert(
            "x-message-ttl".into(),
            AMQPValue::LongLongInt(i64::from(RETRY_DELAYS_S[attempt as usize - 1]) * 1000),
        );
        args.insert("x-dead-letter-exchange".into(), text(""));
        args.insert("x-dead-letter-routing-key".into(), text(CLIPS));
        channel
            .queue_declare(queue.as_str().into(), durable, args)
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_grow_then_stop() {
        assert_eq!(retry_queue(0), None);
        assert_eq!(retry_queue(1).as_deref(), Some("voice.clips.retry.10s"));
        assert_eq!(retry_queue(3).as_deref(), Some("voice.clips.retry.300s"));
        assert_eq!(retry_queue(4), None);
        assert!(RETRY_DELAYS_S.windows(2).all(|w| w[0] < w[1]));
    }
}
