use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Which employee handled each sale: lists a day's clips, dispatches them, evaluates the model.
#[derive(Debug, Parser)]
#[command(name = "dispatcher", version)]
pub struct Cli {
    /// A settings file (TOML) layered over config/default.toml and under the environment.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Debug logging.
    #[arg(long, short, global = true)]
    pub verbose: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Accuracy on a labelled set (enroll/, clips/, labels.csv); threshold calibration.
    Eval(EvalArgs),
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// The labelled set's folder.
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    /// Use the labelled segments as the speaker turns (identification alone, no diarization).
    #[arg(long)]
    pub oracle_turns: bool,
    /// One JSON document on stdout instead of tables.
    #[arg(long)]
    pub json: bool,
}
