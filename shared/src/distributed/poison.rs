//! Messages nobody can decode: tried again a few times (a newer consumer may read a newer
//! schema), then moved to the dead-letter queue with the reason. Never a crash.

use lapin::message::Delivery;
use lapin::types::AMQPValue;

use crate::queue::topology::POISON_ATTEMPTS;
use crate::queue::{Broker, BrokerError, MessageError, header_number, text};

/// Settles an undecodable `delivery` from `queue`; the caller acks it once this returns `Ok`.
pub async fn settle(
    broker: &Broker,
    delivery: &Delivery,
    queue: &str,
    error: &MessageError,
) -> Result<(), BrokerError> {
    let attempt = header_number(&delivery.properties, "attempt")
        .and_then(|n| u32::try_from(n).ok())
        .unwrap_or(1)
        .max(1);
    if attempt < POISON_ATTEMPTS {
        tracing::warn!(queue, attempt, reason = error.reason(), %error, "undecodable message: trying again later");
        broker
            .forward(
                delivery,
                "",
                queue,
                &[
                    ("attempt", AMQPValue::LongLongInt(i64::from(attempt) + 1)),
                    ("last_error_kind", text(error.reason())),
                ],
            )
            .await
    } else {
        tracing::error!(queue, attempt, reason = error.reason(), %error, "undecodable message: moved to the dead-letter queue");
        broker
            .dead_letter(delivery, queue, error.reason(), &error.to_string())
            .await
    }
}
