//! Location calibration and the enrollment checks on real voices: the demo location's clips
//! against rosters built from its samples. A small location names nobody wrongly; one person
//! enrolled twice is reported and stays `unknown`; a sample in the wrong folder is flagged and
//! left out, and `enroll`, `validate` and the job alert say so.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Output};

use it::{DEMO_LOCATION, Services, TempDir, binary, demo_location, ort_library, root};
use serde_json::Value;

const DATE: &str = "2025-10-06";

/// A location under `root` whose workers' samples are demo samples: `(worker folder, [(demo
/// worker, file)])`; its clips are the demo's.
fn location(root: &Path, workers: &[(&str, &[(&str, &str)])]) {
    let location = root.join(DEMO_LOCATION);
    let demo = demo_location();
    for (worker, samples) in workers {
        let dir = location.join("voice_samples").join(worker);
        std::fs::create_dir_all(&dir).unwrap();
        for (i, (owner, file)) in samples.iter().enumerate() {
            let from = demo.join("voice_samples").join(owner).join(file);
            std::fs::copy(&from, dir.join(format!("{:02}.wav", i + 1))).unwrap();
        }
    }
    std::os::unix::fs::symlink(demo.join("clips"), location.join("clips")).unwrap();
}

const ALL: [(&str, &str); 4] = [
    ("", "01.wav"),
    ("", "02.wav"),
    ("", "03.wav"),
    ("", "04.wav"),
];

/// All four demo samples of `who`.
fn own(who: &'static str) -> Vec<(&'static str, &'static str)> {
    ALL.iter().map(|(_, f)| (who, *f)).collect()
}

fn run(data: &Path, out: &Path, envs: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(binary("dispatcher"));
    cmd.args(["run", DEMO_LOCATION, DATE, "--out"])
        .arg(out)
        .current_dir(root())
        .env("VOICE_LOCAL_ROOT", data)
        .env("ORT_DYLIB_PATH", ort_library())
        .env_remove("AMQP_URL")
        .env_remove("DATABASE_URL")
        .env_remove("VOICE_MODEL")
        .env_remove("VOICE_DIARIZATION_THRESHOLD")
        .env_remove("VOICE_MARGIN");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn results(out: &Path) -> Vec<Value> {
    std::fs::read_to_string(out.join("results.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn profiles(out: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(out.join("profiles.json")).unwrap()).unwrap()
}

/// Each demo clip's employee by file name (`none` and `failed` as they are).
fn expected() -> HashMap<String, String> {
    csv::Reader::from_path(root().join("demo/expected.csv"))
        .unwrap()
        .records()
        .map(|r| r.unwrap())
        .map(|r| (r[0].to_string(), r[1].to_string()))
        .collect()
}

/// No clip names a worker other than its employee; returns how many were named right.
fn assert_no_wrong_name(rows: &[Value], enrolled: &[&str]) -> usize {
    let expected = expected();
    let mut right = 0;
    for row in rows {
        let clip = row["clip"].as_str().unwrap();
        let Some(named) = row["worker_name"].as_str() else {
            continue;
        };
        let truth = expected[clip].as_str();
        assert!(
            enrolled.contains(&truth) && named == truth,
            "{clip}: named {named}, but it is {truth}'s clip"
        );
        right += 1;
    }
    right
}

#[test]
fn two_employees_with_one_sample_each_name_nobody_wrongly() {
    let data = TempDir::new("two-by-one");
    location(
        data.path(),
        &[
            ("Allison", &[("Allison", "01.wav")]),
            ("Carlo", &[("Carlo", "01.wav")]),
        ],
    );
    let out = data.path().join("out");
    let run = run(data.path(), &out, &[]);
    assert!(run.status.success(), "{}", text(&run));
    let rows = results(&out);
    assert_eq!(rows.len(), 11);
    let right = assert_no_wrong_name(&rows, &["Allison", "Carlo"]);
    let cal = &profiles(&out)["calibration"];
    let threshold = cal["rules"]["threshold"].as_f64().unwrap();
    let prior = cal["prior"]["threshold"].as_f64().unwrap();
    assert!(
        threshold > prior,
        "two samples cannot show the channel: the threshold {threshold} must be stricter than the prior {prior}"
    );
    for row in rows.iter().filter(|r| r["status"] != "failed") {
        assert_eq!(row["threshold"].as_f64(), Some(threshold), "{row}");
        assert_eq!(row["required_margin"], cal["rules"]["margin"]);
    }
    eprintln!("2 × 1: {right} of 6 employee clips named, threshold {threshold:.3}");
}

#[test]
fn one_person_enrolled_twice_is_reported_and_a_speaker_between_them_is_unknown() {
    let data = TempDir::new("twins");
    location(
        data.path(),
        &[
            ("Allison", &[("Allison", "01.wav"), ("Allison", "02.wav")]),
            (
                "Allison Smith",
                &[("Allison", "03.wav"), ("Allison", "04.wav")],
            ),
            ("Carlo", &own("Carlo")),
            ("June", &own("June")),
        ],
    );
    let out = data.path().join("out");
    let run = run(data.path(), &out, &[]);
    let log = text(&run);
    assert!(run.status.success(), "{log}");
    assert!(
        log.contains("Allison and Allison Smith sound alike")
            || log.contains("Allison Smith and Allison sound alike"),
        "the look-alike pair is logged with its fix: {log}"
    );
    let alike = profiles(&out)["calibration"]["look_alike"].clone();
    assert_eq!(alike.as_array().unwrap().len(), 1, "{alike}");
    let names = [
        alike[0]["a_name"].as_str().unwrap(),
        alike[0]["b_name"].as_str().unwrap(),
    ];
    assert!(
        names.contains(&"Allison") && names.contains(&"Allison Smith"),
        "{alike}"
    );

    let rows = results(&out);
    assert_no_wrong_name(&rows, &["Carlo", "June"]);
    let expected = expected();
    let mut between = 0;
    for row in rows
        .iter()
        .filter(|r| expected[r["clip"].as_str().unwrap()] == "Allison")
    {
        assert!(row["worker_name"].is_null(), "{row}");
        between += row["speakers"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["unknown_reason"] == "look_alike")
            .count();
    }
    assert!(
        between >= 1,
        "Allison's voice is unknown between the two: {rows:?}"
    );
}

#[test]
fn a_mislabelled_sample_is_flagged_left_out_and_told() {
    let data = TempDir::new("mislabelled");
    let mut carlo = own("Carlo");
    carlo.push(("June", "01.wav"));
    location(
        data.path(),
        &[
            ("Allison", &own("Allison")),
            ("Carlo", &carlo),
            ("June", &own("June")[1..]),
        ],
    );
    // Standalone: left out of the profile, logged with its fix, and the job alert names it.
    let (hook, server) = it::webhook();
    let out = data.path().join("out");
    let run = run(
        data.path(),
        &out,
        &[("MONITORING_WEBHOOK_URL", server.uri().as_str())],
    );
    let log = text(&run);
    assert!(run.status.success(), "{log}");
    assert!(
        log.contains("record a new sample of Carlo to replace 05.wav"),
        "{log}"
    );
    let stored = profiles(&out);
    let flagged = stored["calibration"]["flagged"].as_array().unwrap();
    assert_eq!(flagged.len(), 1, "{flagged:?}");
    assert_eq!(flagged[0]["name"], "Carlo");
    assert_eq!(flagged[0]["sample"], "05.wav");
    assert_eq!(flagged[0]["issue"], "unlike_other_samples");
    let carlo_profile = stored["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "Carlo")
        .unwrap();
    assert_eq!(
        carlo_profile["samples"],
        serde_json::json!(["01.wav", "02.wav", "03.wav", "04.wav"])
    );
    let right = assert_no_wrong_name(&results(&out), &["Allison", "Carlo", "June"]);
    assert!(right >= 8, "{right} of 9 employee clips named");
    let alerts: Vec<Value> = it::alert_bodies(&hook, &server)
        .into_iter()
        .filter(|b| b["event"] == "enrollment_issues")
        .collect();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert!(
        alerts[0]["fields"]["flagged samples"]
            .as_str()
            .is_some_and(|f| f.contains("Carlo (05.wav)")),
        "{}",
        alerts[0]
    );

    // Distributed: `enroll` prints it with its fix, stores it, and `validate` warns.
    let services = Services::new("mislabelled");
    let mut enroll = services.command("dispatcher", data.path());
    let enrolled = enroll.args(["enroll", DEMO_LOCATION]).output().unwrap();
    let printed = text(&enrolled);
    assert!(enrolled.status.success(), "{printed}");
    assert!(printed.contains("1 sample(s) left out"), "{printed}");
    assert!(
        printed.contains("fix: record a new sample of Carlo to replace 05.wav"),
        "{printed}"
    );
    assert!(printed.contains("threshold 0."), "{printed}");
    let stored =
        services.psql("SELECT calibration->'flagged'->0->>'sample' FROM voice_calibrations");
    assert_eq!(stored, "05.wav");
    let mut validate = services.command("dispatcher", data.path());
    let checked = validate.args(["validate", "--json"]).output().unwrap();
    let report: Value = serde_json::from_slice(&checked.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", text(&checked)));
    let check = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "enrollment")
        .cloned()
        .unwrap();
    assert_eq!(check["warning"], true, "{check}");
    assert!(
        check["detail"]
            .as_str()
            .unwrap()
            .contains("Carlo to replace 05.wav"),
        "{check}"
    );
}
