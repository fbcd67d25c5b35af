//! `dispatcher report <JOB_ID | --out DIR> --html FILE`: the job's results as one
//! self-contained HTML page (see `adapters::report`), from Postgres or a standalone output folder.

use std::path::Path;

use adapters::report::{JobResults, ReportClip, ReportJob, render};
use anyhow::Context;
use app::config::Settings;
use engine::model::Manifest;

use crate::Failure;
use crate::cli::ReportArgs;

pub fn run(config: Option<&Path>, args: &ReportArgs) -> anyhow::Result<()> {
    let settings = Settings::load(config).map_err(|e| Failure::Usage(e.to_string()))?;
    let manifest = Manifest::load(&settings.model_path()).context("reading the model manifest")?;
    let rules = settings.rules(&manifest);
    let (details, clips) = match (&args.job_id, &args.out) {
        (Some(job_id), None) => from_store(&settings, job_id)?,
        (None, Some(out)) => from_folder(out)?,
        _ => {
            return Err(Failure::Usage("give a JOB_ID or --out DIR (one of them)".into()).into());
        }
    };
    let job = ReportJob {
        title: "Voice diarization report".into(),
        details: [details, vec![("model".to_string(), manifest.id.clone())]].concat(),
        threshold: rules.threshold,
        margin: rules.margin,
    };
    let html = render(&job, &clips);
    std::fs::write(&args.html, html).with_context(|| format!("writing {}", args.html.display()))?;
    println!("{}: {} clip(s)", args.html.display(), clips.len());
    Ok(())
}

fn from_store(settings: &Settings, job_id: &str) -> anyhow::Result<JobResults> {
    let Some(url) = &settings.database_url else {
        return Err(Failure::Usage(
            "a job's results are in Postgres: set DATABASE_URL (or use --out DIR)".into(),
        )
        .into());
    };
    let store = adapters::store::Store::connect(url, settings.database_ca_cert.as_deref())
        .map_err(|e| Failure::Usage(e.to_string()))?;
    let runtime = app::service::runtime().context("starting the async runtime")?;
    match runtime.block_on(store.job_report(job_id))? {
        Some(report) => Ok(report),
        None => anyhow::bail!("job {job_id} is not in voice_jobs"),
    }
}

fn from_folder(out: &Path) -> anyhow::Result<JobResults> {
    let path = out.join("results.jsonl");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Failure::Usage(format!("{}: {e}", path.display())))?;
    let mut clips = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let clip: ReportClip = serde_json::from_str(line)
            .with_context(|| format!("{} line {}", path.display(), i + 1))?;
        clips.push(clip);
    }
    clips.sort_by(|a, b| (&a.date, &a.clip).cmp(&(&b.date, &b.clip)));
    Ok((
        vec![("results".to_string(), out.display().to_string())],
        clips,
    ))
}
