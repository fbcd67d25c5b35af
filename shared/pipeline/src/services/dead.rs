//! Clip tasks that were dead-lettered, as `failed` results: over the broker's delivery limit
//! (workers died holding it), undecodable (poison), or out of retries. Without a result the job
//! would wait for the timeout sweep; with one it closes like any other.

use crate::queue::topology::DELIVERY_LIMIT;
use crate::queue::{Received, decode};
use crate::{ClipResult, ClipTask};

/// What a dead-lettered task amounts to.
pub enum DeadTask {
    /// Store this result.
    Failed(Box<ClipResult>),
    /// The worker that gave up already published the task's `failed` result.
    AlreadyResulted,
    /// Neither the body nor the headers say which clip of which job it was.
    Unattributable(String),
}

pub fn judge(delivery: &Received) -> DeadTask {
    let headers = &delivery.envelope.headers;
    let reason = headers
        .text("dead_reason")
        .or_else(|| headers.text("x-first-death-reason"))
        .unwrap_or_else(|| "dead_lettered".into());
    if reason == "retries_exhausted" {
        return DeadTask::AlreadyResulted;
    }
    let error = headers.text("dead_error").unwrap_or_else(|| match reason.as_str() {
        "delivery_limit" => format!(
            "handed out {DELIVERY_LIMIT} times without an outcome: the workers holding it stopped each time"
        ),
        other => format!("dead-lettered by the broker ({other})"),
    });
    let (task, kind) = match decode::<ClipTask>(&delivery.data) {
        Ok(task) => (task, reason),
        Err(e) => match from_headers(delivery) {
            Some(task) => (task, "poison".to_string()),
            None => return DeadTask::Unattributable(e.to_string()),
        },
    };
    DeadTask::Failed(Box::new(ClipResult::failed(&task, "", &kind, error)))
}

/// The task as its readable headers describe it, for a body nobody can decode.
fn from_headers(delivery: &Received) -> Option<ClipTask> {
    let headers = &delivery.envelope.headers;
    let [job, location, date, clip] = ["job", "location", "date", "clip"].map(|k| headers.text(k));
    let (job_id, location_id, date, name) = (job?, location?, date?, clip?);
    let attempt = delivery.attempt();
    let key = format!("{location_id}/{date}/{name}");
    Some(ClipTask::identity(
        job_id,
        location_id,
        key,
        name,
        date,
        attempt,
    ))
}
