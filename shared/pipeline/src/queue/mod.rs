//! What travels between the stages (DESIGN §8): the message codec, the topology, and the
//! transports that carry it, RabbitMQ between processes and in-process queues for a
//! standalone run.

mod memory;
mod message;
pub mod topology;
mod transport;

pub use memory::MemoryBroker;
pub use message::{CONTENT_TYPE, MessageError, SCHEMA_VERSION, decode, encode};
pub use transport::{
    Acknowledge, BrokerError, CONFIRM_TIMEOUT_S, Connect, Deliveries, Envelope, Header, Headers,
    Outgoing, Received, Transport, dead_letter, forward,
};

use crate::{ClipResult, ClipTask};

/// The readable side of a task: the body is binary, so an operator looking at a queue or the
/// dead-letter queue in the management UI reads these.
pub fn task_headers(task: &ClipTask, last_error_kind: Option<&str>) -> Headers {
    let mut headers = Headers::default();
    headers.set_text("job", &task.job_id);
    headers.set_text("location", &task.location_id);
    headers.set_text("date", &task.clip.date);
    headers.set_text("clip", &task.clip.name);
    headers.set_number("attempt", i64::from(task.attempt));
    if let Some(kind) = last_error_kind {
        headers.set_text("last_error_kind", kind);
    }
    headers
}

pub fn result_headers(result: &ClipResult) -> Headers {
    let mut headers = Headers::default();
    headers.set_text("job", &result.job_id);
    headers.set_text("location", &result.location_id);
    headers.set_text("date", &result.date);
    headers.set_text("clip", &result.clip);
    headers.set_text("status", result.status.as_str());
    headers.set_number("attempt", i64::from(result.attempts));
    if let Some(kind) = &result.error_kind {
        headers.set_text("last_error_kind", kind);
    }
    headers
}

/// The envelope of `task` (or of what became of it): the clip's and the job's ids.
pub fn task_envelope(task: &ClipTask, headers: Headers) -> Envelope {
    Envelope::new(&task.clip.message_id(), &task.job_id, headers)
}
