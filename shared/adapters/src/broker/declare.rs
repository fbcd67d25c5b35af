//! Declares the queue topology of [`pipeline::queue::topology`] on RabbitMQ: every binary
//! declares it at start; declaring is idempotent as long as the arguments stay the same.

use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{Channel, ExchangeKind};

use pipeline::queue::topology::*;

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
