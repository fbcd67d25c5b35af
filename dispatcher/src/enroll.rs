//! `dispatcher enroll <LOCATION_ID>`: embed the location's voice samples now, calibrate the
//! location and run the enrollment checks, and store the profiles and the calibration
//! (`voice_profiles`, `voice_calibrations`), whatever is cached; the workers pick them up from
//! there. Prints each worker with its samples and issues, the threshold and why, and each
//! issue's fix.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use app::config::Settings;
use pipeline::services::profiles::{ProfileError, Profiles};
use pipeline::source::is_uuid;
use pipeline::spawn_batcher;

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
    let store = crate::job::connect_store(&settings)?;
    let source = settings
        .clip_source()
        .map_err(|e| Failure::Usage(e.to_string()))?;
    let encoders = settings.encoders().context("loading the speaker model")?;
    let model = encoders.speakers.manifest().id.clone();
    let prior = settings.prior(encoders.speakers.manifest());
    let (batcher, _thread) = spawn_batcher(encoders).context("starting the encoder")?;
    let runtime = app::service::runtime().context("starting the async runtime")?;
    let (enrolled, assignment) = runtime.block_on(async {
        store.migrate().await.context("preparing the database")?;
        let profiles = Profiles::new(Arc::clone(&source), Arc::new(store.clone()), prior);
        let enrolled = match profiles.get(&batcher, &location, true).await {
            Ok(enrolled) => enrolled,
            Err(ProfileError::NoEmployees(_)) => anyhow::bail!(
                "location {location} has no worker with a usable voice sample under {}",
                source.samples_place(&location)
            ),
            Err(e) => return Err(e.into()),
        };
        // The listing the enrollment just made, not a second one.
        let assignment = profiles.listing(&location, false).await?;
        anyhow::Ok((enrolled, assignment))
    })?;

    let voices = &enrolled.profiles;
    let calibration = &voices.calibration;
    println!("location {location}  model {model}");
    println!(
        "  {:<38} {:<24} {:>7} {:>9}  note",
        "worker", "name", "samples", "speech s"
    );
    for worker in &assignment.workers {
        let profile = voices
            .profiles
            .iter()
            .find(|p| p.worker_id == worker.worker_id);
        let left_out = calibration
            .flagged
            .iter()
            .filter(|f| f.worker_id == worker.worker_id)
            .count();
        let alike: Vec<&str> = calibration
            .look_alike
            .iter()
            .filter_map(|p| {
                if p.a == worker.worker_id {
                    Some(p.b_name.as_str())
                } else if p.b == worker.worker_id {
                    Some(p.a_name.as_str())
                } else {
                    None
                }
            })
            .collect();
        let mut notes = Vec::new();
        match profile {
            Some(p) if p.weak_profile => notes.push("weak: under 3 s of speech".to_string()),
            Some(_) => {}
            None if worker.samples.is_empty() => notes.push("no voice sample".into()),
            None => notes.push("no usable sample: not matched".into()),
        }
        if left_out > 0 {
            notes.push(format!("{left_out} sample(s) left out"));
        }
        if !alike.is_empty() {
            notes.push(format!("sounds like {}", alike.join(", ")));
        }
        println!(
            "  {:<38} {:<24} {:>7} {:>9}  {}",
            worker.worker_id,
            worker.name,
            worker.samples.len(),
            profile.map_or("-".into(), |p| format!("{:.1}", p.speech_s)),
            notes.join("; ")
        );
    }
    for owner in &assignment.unmatched {
        println!("  samples of `{owner}` match no worker: not used");
    }
    for skipped in &enrolled.skipped {
        println!("  skipped: {skipped}");
    }
    println!();
    println!(
        "  {} (margin {:.3})",
        calibration.explain(),
        calibration.rules.margin
    );
    if let (Some(mean), Some(sd)) = (calibration.impostor_mean, calibration.impostor_sd) {
        println!(
            "  different people score {mean:.3} ± {sd:.3} here ({} trials); the same person {}",
            calibration.impostor_trials,
            calibration.target_mean.map_or("-".into(), |t| format!(
                "{t:.3} ({} trials)",
                calibration.target_trials
            ))
        );
    }
    let issues = calibration.issues();
    if !issues.is_empty() {
        println!();
        for issue in &issues {
            println!("  fix: {issue}");
        }
    }
    println!();
    println!(
        "{} profile(s) and the calibration stored in voice_profiles and voice_calibrations",
        voices.profiles.len()
    );
    Ok(())
}
