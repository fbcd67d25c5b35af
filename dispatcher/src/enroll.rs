//! `dispatcher enroll <LOCATION_ID>`: embed the location's voice samples now and store the
//! profiles in `voice_profiles`, whatever is cached; the workers pick them up from there.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use shared::config::Settings;
use shared::distributed::profiles::{ProfileError, Profiles};
use shared::pipeline::spawn_batcher;
use shared::source::is_uuid;

use crate::Failure;
use crate::cli::EnrollArgs;

pub fn run(config: Option<&Path>, args: &EnrollArgs) -> anyhow::Result<()> {
    if !is_uuid(&args.location_id) {
        return Err(
            Failure::Usage(format!("LOCATION_ID `{}` is not a UUID", args.location_id)).into(),
        );
    }
    let location = args.location_id.to_ascii_lowercase();
    let settings = Settings::load(config).map_err(|e| Failure::Usage(e.to_string()))?;
    if settings.database_url.is_none() {
        return Err(Failure::Usage(
            "enroll stores the profiles in Postgres: set DATABASE_URL (standalone runs enroll \
             from the samples at every run)"
                .into(),
        )
        .into());
    }
    let store = crate::publish::connect_store(&settings)?;
    let source = settings
        .clip_source()
        .map_err(|e| Failure::Usage(e.to_string()))?;
    let encoder = settings.encoder().context("loading the speaker model")?;
    let model = encoder.manifest().id.clone();
    let (batcher, _thread) = spawn_batcher(encoder).context("starting the encoder")?;
    let runtime = shared::service::runtime().context("starting the async runtime")?;
    let (enrolled, assignment) = runtime.block_on(async {
        store.migrate().await.context("preparing the database")?;
        let profiles = Profiles::new(Arc::clone(&source), Some(store.clone()));
        let enrolled = match profiles.get(&batcher, &location, true).await {
            Ok(enrolled) => enrolled,
            Err(ProfileError::NoWorkers(_)) => anyhow::bail!(
                "location {location} has no worker with a usable voice sample under {}",
                source.samples_place(&location)
            ),
            Err(e) => return Err(e.into()),
        };
        // The listing the enrollment just made, not a second one.
        let assignment = profiles.listing(&location, false).await?;
        anyhow::Ok((enrolled, assignment))
    })?;

    println!("location {location}  model {model}");
    println!(
        "  {:<38} {:<24} {:>7} {:>9}  note",
        "worker", "name", "samples", "speech s"
    );
    for worker in &assignment.workers {
        let profile = enrolled
            .profiles
            .iter()
            .find(|p| p.worker_id == worker.worker_id);
        let (speech, note) = match profile {
            Some(p) if p.weak_profile => {
                (format!("{:.1}", p.speech_s), "weak: under 3 s of speech")
            }
            Some(p) => (format!("{:.1}", p.speech_s), ""),
            None if worker.samples.is_empty() => ("-".into(), "no voice sample"),
            None => ("-".into(), "no usable sample"),
        };
        println!(
            "  {:<38} {:<24} {:>7} {:>9}  {note}",
            worker.worker_id,
            worker.name,
            worker.samples.len(),
            speech
        );
    }
    for owner in &assignment.unmatched {
        println!("  samples of `{owner}` match no worker: not used");
    }
    for skipped in &enrolled.skipped {
        println!("  skipped: {skipped}");
    }
    println!(
        "{} profile(s) stored in voice_profiles",
        enrolled.profiles.len()
    );
    Ok(())
}
