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
