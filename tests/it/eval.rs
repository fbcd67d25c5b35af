//! `dispatcher eval` on the development set meets the bar at the model's default threshold and
//! margin, with labelled turns and with the local diarizer's.

use std::process::Command;

use it::{binary, root};

fn eval(extra: &[&str]) -> Option<serde_json::Value> {
    let data = root().join("../shared/data/speakerid-dev");
    if !data.is_dir() {
        eprintln!(
            "SKIPPED: {} is not present (it is not shipped with the project)",
            data.display()
        );
        return None;
    }
    let out = Command::new(binary("dispatcher"))
        .args(["eval", "--json", "--data"])
        .arg(&data)
        .args(extra)
        .current_dir(root())
        .env_remove("VOICE_DIARIZATION_THRESHOLD")
        .env_remove("VOICE_MARGIN")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for key in [
        "accuracy",
        "false_accept_rate",
        "eer",
        "eer_threshold",
        "clips",
    ] {
        assert!(report.get(key).is_some(), "missing key {key}");
    }
    assert_eq!(report["clips"], 68);
    Some(report)
}

/// Issue bar: at least `accuracy` open-set, and never a customer accepted or a wrong name.
fn assert_meets_the_bar(report: &serde_json::Value, accuracy: f64) {
    assert!(
        report["accuracy"].as_f64().unwrap() >= accuracy,
        "{}",
        report["accuracy"]
    );
    assert_eq!(report["false_accepts"], 0);
    assert_eq!(report["wrong_names"], 0);
}

#[test]
fn dev_set_with_oracle_turns_meets_the_bar() {
    let Some(report) = eval(&["--oracle-turns"]) else {
        return;
    };
    assert_meets_the_bar(&report, 0.98);
    assert!(report["eer"].as_f64().unwrap() < 0.02);
    assert!(report.get("der").is_none(), "no DER for labelled turns");
}

#[test]
fn dev_set_with_the_local_diarizer_meets_the_bar() {
    let Some(report) = eval(&[]) else { return };
    assert_eq!(report["turns"], "local");
    // 66 of 68: the margin every named speaker needs (from the location's stranger trials, which
    // removed the look-alike customers' wrong names on speakerid-dev2) leaves one employee
    // speaking another language unknown (lead 0.078 over the next employee, 0.080 asked).
    assert_meets_the_bar(&report, 0.97);
    let der = report["der"].as_f64().unwrap();
    assert!(der <= 0.10, "DER {der}");
}
