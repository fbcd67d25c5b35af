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
    /// Process a location's clips for a date or an inclusive range START..END.
    Run(RunArgs),
    /// (Re)build a location's voice profiles from its samples and store them in Postgres.
    Enroll(EnrollArgs),
    /// Accuracy on a labelled set (enroll/, clips/, labels.csv); threshold calibration.
    Eval(EvalArgs),
}

#[derive(Debug, Args)]
pub struct EnrollArgs {
    /// The location (a UUID).
    pub location_id: String,
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

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The location (a UUID).
    pub location_id: String,
    /// YYYY-MM-DD, or START..END (inclusive).
    pub dates: String,
    /// List what would be processed (clip, transaction, size) and process nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Process clips that already have a result again, replacing it.
    #[arg(long)]
    pub force: bool,
    /// With a broker: follow the job with a progress bar until the reducer closes it.
    #[arg(long)]
    pub wait: bool,
    /// Output folder of standalone mode (default out/<location_id>/).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}
