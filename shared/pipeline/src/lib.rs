//! The pipeline: the traits at its edges and the stages over them, written once for both
//! transports (in-process queues for a standalone run, RabbitMQ across processes).
//!
//! - Edges: [`source::ClipSource`] (where clips and samples come from), [`transcript::Transcriber`]
//!   (speaker turns from a service), [`queue::Transport`] (the task and result queues, with the
//!   in-memory [`queue::MemoryBroker`]), [`ResultSink`] (where results and jobs are kept) and
//!   [`profile_store::ProfileStore`] (rosters, stored profiles and calibrations).
//! - Stages: [`ClipProcessor`] (decode → turns → embed → decide) behind the [`batcher`] the
//!   model runs in; [`services`]: the dispatcher, worker and reducer, and
//!   [`services::in_process`], which runs all three in one process.

pub mod batcher;
mod clip;
pub mod profile_store;
pub mod queue;
pub mod services;
mod sink;
pub mod source;
mod task;
pub mod transcript;

pub use batcher::{BatcherHandle, spawn_batcher};
pub use clip::ClipProcessor;
pub use sink::{JobRow, NewJob, ResultSink, SinkError};
pub use task::{ClipResult, ClipTask, SpeakerResult, Timings};
