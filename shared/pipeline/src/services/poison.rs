//! Messages nobody can decode: tried again a few times (a newer consumer may read a newer
//! schema), then moved to the dead-letter queue with the reason. Never a crash.

use crate::queue::topology::POISON_ATTEMPTS;
use crate::queue::{BrokerError, Header, MessageError, Received, Transport, dead_letter, forward};

/// Settles an undecodable `delivery` from `queue`; the caller acks it once this returns `Ok`.
pub async fn settle(
    broker: &dyn Transport,
    delivery: &Received,
    queue: &str,
    error: &MessageError,
) -> Result<(), BrokerError> {
    let attempt = delivery.attempt();
    if attempt < POISON_ATTEMPTS {
        tracing::warn!(queue, attempt, reason = error.reason(), %error, "undecodable message: trying again later");
        forward(
            broker,
            delivery,
            "",
            queue,
            &[
                ("attempt", Header::Number(i64::from(attempt) + 1)),
                ("last_error_kind", Header::Text(error.reason().into())),
            ],
        )
        .await
    } else {
        tracing::error!(queue, attempt, reason = error.reason(), %error, "undecodable message: moved to the dead-letter queue");
        dead_letter(broker, delivery, queue, error.reason(), &error.to_string()).await
    }
}
