//! What travels between the stages when a broker carries them (DESIGN §8): the message codec,
//! the topology, and a confirming connection.

mod broker;
mod message;
pub mod topology;

pub use broker::{
    Broker, BrokerConfig, BrokerError, CaCertError, Outgoing, header_number, header_text,
    properties, text,
};
pub use message::{CONTENT_TYPE, MessageError, SCHEMA_VERSION, decode, encode};

use lapin::types::{AMQPValue, FieldTable};

use crate::pipeline::{ClipResult, ClipTask};

/// The readable side of a task: the body is binary, so an operator looking at a queue or the
/// dead-letter queue in the management UI reads these.
pub fn task_headers(task: &ClipTask, last_error_kind: Option<&str>) -> FieldTable {
    let mut headers = FieldTable::default();
    headers.insert("job".into(), text(&task.job_id));
    headers.insert("location".into(), text(&task.location_id));
    headers.insert("date".into(), text(&task.clip.date));
    headers.insert("clip".into(), text(&task.clip.name));
    headers.insert(
        "attempt".into(),
        AMQPValue::LongLongInt(i64::from(task.attempt)),
    );
    if let Some(kind) = last_error_kind {
        headers.insert("last_error_kind".into(), text(kind));
    }
    headers
}

pub fn result_headers(result: &ClipResult) -> FieldTable {
    let mut headers = FieldTable::default();
    headers.insert("job".into(), text(&result.job_id));
    headers.insert("location".into(), text(&result.location_id));
    headers.insert("date".into(), text(&result.date));
    headers.insert("clip".into(), text(&result.clip));
    headers.insert("status".into(), text(result.status.as_str()));
    headers.insert(
        "attempt".into(),
        AMQPValue::LongLongInt(i64::from(result.attempts)),
    );
    if let Some(kind) = &result.error_kind {
        headers.insert("last_error_kind".into(), text(kind));
    }
    headers
}
