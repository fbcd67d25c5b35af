//! Everything the dispatcher, worker and reducer share.
//!
//! The modules follow the data flow of one clip:
//!
//! - [`config`]: layered settings (defaults, files, environment).
//! - [`audio`]: decode any supported file to 16 kHz mono, streaming; level normalisation.
//! - [`features`]: the model's front-end (mel spectrogram), built from its manifest.
//! - [`model`]: the model manifest, loading ONNX Runtime, the speaker encoder (batched runs).
//! - [`diarize`]: the local diarizer (speech detection, window embeddings, clustering).
//! - [`transcribe`]: speaker turns from AssemblyAI; [`http`]: what its client and Drive's share.
//! - [`turns`]: speaker turns, and the minimum-length filter.
//! - [`matching`]: voice profiles (enrollment) and the decision rules.
//! - [`eval`]: labelled evaluation sets, accuracy, equal error rate and DER.
//! - [`source`]: where clips and samples come from (a local folder or Google Drive), ids and dates.
//! - [`pipeline`]: the clip work (task → result), the batcher, and where results are kept.
//! - [`queue`]: what travels between the stages: codec, topology, RabbitMQ and in-process queues.
//! - [`store`]: Postgres: migrations, jobs, idempotent result upserts.
//! - [`ops`]: metrics, health endpoints, alerts; [`report`]: the HTML report of a job.
//! - [`telemetry`]: logging for the binaries; [`service`]: what the service binaries share.
//! - [`distributed`]: the dispatcher, worker and reducer services, over either transport and
//!   either sink; `in_process` runs a whole job in one process (standalone mode).

pub mod audio;
pub mod config;
pub mod diarize;
pub mod distributed;
pub mod eval;
pub mod features;
pub mod http;
pub mod matching;
pub mod model;
pub mod ops;
pub mod pipeline;
pub mod queue;
pub mod report;
pub mod service;
pub mod source;
pub mod store;
pub mod telemetry;
pub mod transcribe;
pub mod turns;
