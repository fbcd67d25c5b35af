//! The pipeline's edges to the outside, each the real implementation of one of its traits:
//!
//! - [`broker`]: RabbitMQ ([`pipeline::queue::Transport`]), with the topology declared.
//! - [`store`]: Postgres or Supabase ([`pipeline::ResultSink`],
//!   [`pipeline::profile_store::ProfileStore`]): migrations, jobs, idempotent result upserts,
//!   the customer's `workers` table.
//! - [`local`]: a local folder of clips and samples, and an output folder for results.
//! - [`drive`]: Google Drive v3 ([`pipeline::source::ClipSource`]).
//! - [`assemblyai`]: AssemblyAI's speaker labels ([`pipeline::transcript::Transcriber`]).
//! - [`webhooks`]: alerts to Slack, Discord or a generic webhook ([`ops::alerts::Notify`]).
//! - [`report`]: the HTML report of a job.
//! - [`http`]: what the HTTP clients share (TLS, errors without URLs, `Retry-After`).

pub mod assemblyai;
pub mod broker;
pub mod drive;
pub mod http;
pub mod local;
pub mod report;
pub mod store;
pub mod webhooks;
