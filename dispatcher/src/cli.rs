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
    /// Pre-flight: settings, model and runtime, GPU, source, database, AssemblyAI, broker.
    Validate(ValidateArgs),
    /// One probe of a service's /health: exit 0 healthy, 1 not.
    Health(HealthArgs),
    /// (Re)build a location's voice profiles from its samples and store them in Postgres.
    Enroll(EnrollArgs),
    /// A job's results as one self-contained HTML page.
    Report(ReportArgs),
    /// Accuracy on a labelled set (enroll/, clips/, labels.csv); threshold calibration.
    Eval(EvalArgs),
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// One JSON document on stdout instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct HealthArgs {
    /// Probe once and exit (the only mode; kept for the predecessor's command line).
    #[arg(long)]
    pub once: bool,
    /// The endpoint to probe.
    #[arg(long, default_value = "http://127.0.0.1:8080/health")]
    pub url: String,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The job (its results are read from Postgres).
    pub job_id: Option<String>,
    /// A standalone run's output folder instead (its results.jsonl).
    #[arg(long, value_name = "DIR", conflicts_with = "job_id")]
    pub out: Option<PathBuf>,
    /// Where to write the page.
    #[arg(long, value_name = "FILE")]
    pub html: PathBuf,
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
    /// Give up after this long (`90s`, `30m`, `6h`, or seconds): the job is marked timed out
    /// and the exit code is 124. Default: MAX_JOB_DURATION.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Option<std::time::Duration>,
    /// Serve /health, /ready and /metrics while the run lasts.
    #[arg(long)]
    pub enable_health_check: bool,
    #[arg(long, default_value_t = 8080)]
    pub health_check_port: u16,
    /// Do not run `validate` first.
    #[arg(long)]
    pub skip_validation: bool,
}

/// `90`, `90s`, `30m`, `6h`, `1d`.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration (e.g. 90s, 30m, 6h)"))?;
    let seconds = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => return Err(format!("`{text}`: the unit must be s, m, h or d")),
    };
    if seconds == 0 {
        return Err("the timeout must be above 0".into());
    }
    Ok(std::time::Duration::from_secs(seconds))
}
