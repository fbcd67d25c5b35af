//! What the binaries run, from the settings: [`config`] (layered settings, typed), the
//! services built from them ([`wiring`]), the long-running binaries' scaffolding
//! ([`service`]) and logging ([`telemetry`]).

pub mod config;
mod exit;
pub mod run;
pub mod service;
pub mod telemetry;
pub mod wiring;

pub use exit::{Failure, exit};
pub use run::{run_job, run_reducer, run_worker};
