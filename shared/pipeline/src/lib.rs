//! The pipeline: the traits at its edges and the stages over them, written once for both
//! transports (in-process queues for a standalone run, RabbitMQ across processes).
//!
//! - Edges: [`source::ClipSource`] (where clips and samples come from), [`transcript::Transcriber`]
//!   (speaker turns: the local diarizer, a service, or an evaluation's labels), [`queue::Transport`] (the task and result queues, with the
//!   in-memory [`queue::MemoryBroker`]), [`ResultSink`] (where results and jobs are kept) and
//!   [`profile_store::ProfileStore`] (rosters, stored profiles and calibrations).
//! - Stages: [`ClipProcessor`] (decode, then embed the turns' speakers and decide) behind the
//!   [`batcher`] the model runs in; [`eval`], a labelled set through the same stages; [`services`]: the dispatcher, worker and reducer, and
//!   [`services::in_process`], which runs all three in one process.

pub mod batcher;
mod clip;
pub mod eval;
pub mod profile_store;
pub mod queue;
pub mod services;
mod sink;
pub mod source;
mod task;
pub mod transcript;

pub use batcher::{BatcherHandle, spawn_batcher};
pub use clip::{ClipProcessor, Decoded, Speaker, Undecodable};
pub use sink::{JobRow, NewJob, ResultSink, SinkError};
pub use task::{ClipResult, ClipTask, SpeakerResult, Timings};
