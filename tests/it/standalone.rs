//! `dispatcher run` without a broker: the dispatcher, worker and reducer stages in one process on
//! the demo location.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Output};

use it::{DEMO_LOCATION, TempDir, binary, root};

fn run(out: &Path, extra: &[&str]) -> Output {
    Command::new(binary("dispatcher"))
        .args(["run", DEMO_LOCATION, "2025-10-06", "--out"])
        .arg(out)
        .args(extra)
        .current_dir(root())
        .env("VOICE_LOCAL_ROOT", root().join("demo"))
        .env_remove("AMQP_URL")
        .env_remove("VOICE_MODEL")
        .output()
        .unwrap()
}

fn results(out: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(out.join("results.jsonl")).unwrap();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn expected() -> HashMap<String, String> {
    let mut reader = csv::Reader::from_path(root().join("demo/expected.csv")).unwrap();
    reader
        .records()
        .map(|r| r.unwrap())
        .map(|r| (r[0].to_string(), r[1].to_string()))
        .collect()
}

#[test]
fn the_demo_names_the_right_employee_for_every_clip() {
    let dir = TempDir::new("demo-run");
    let out = dir.path().join("out");
    let run1 = run(&out, &[]);
    assert!(
        run1.status.success(),
        "{}",
        String::from_utf8_lossy(&run1.stderr)
    );
    let stdout = String::from_utf8_lossy(&run1.stdout);
    assert!(
        stdout.contains("matched             9") && stdout.contains("failed              1"),
        "{stdout}"
    );

    let rows = results(&out);
    let expected = expected();
    assert_eq!(rows.len(), expected.len());
    for row in &rows {
        let clip = row["clip"].as_str().unwrap();
        match expected[clip].as_str() {
            "failed" => {
                assert_eq!(row["status"], "failed", "{clip}");
                assert_eq!(row["error_kind"], "unknown_format", "{clip}");
                assert!(
                    row["error"]
                        .as_str()
                        .unwrap()
                        .contains("not a recognised audio format")
                );
            }
            "none" => {
                assert_eq!(row["status"], "no_match", "{clip}");
                assert!(row["worker_id"].is_null());
            }
            name => {
                assert_eq!(row["status"], "matched", "{clip}");
                assert_eq!(row["worker_name"], name, "{clip}");
                assert_eq!(
                    row["transaction_id"].as_str().unwrap(),
                    &clip[6..42],
                    "{clip}"
                );
                let stem = clip.trim_end_matches(".wav");
                let rttm =
                    std::fs::read_to_string(out.join("rttm").join(format!("{stem}.rttm"))).unwrap();
                assert!(
                    rttm.lines()
                        .all(|l| l.starts_with(&format!("SPEAKER {stem} 1 "))),
                    "{rttm}"
                );
                assert!(rttm.contains(&format!(" {name} ")), "{rttm}");
            }
        }
    }

    // A second run skips the completed clips (and retries the failed one) …
    let run2 = run(&out, &[]);
    assert!(run2.status.success());
    let stdout = String::from_utf8_lossy(&run2.stdout);
    assert!(
        stdout.contains("clips               1   (skipped, already done: 10)"),
        "{stdout}"
    );
    assert_eq!(results(&out).len(), expected.len(), "no duplicate lines");
    // … and --force redoes them all, replacing their lines.
    let run3 = run(&out, &["--force"]);
    assert!(run3.status.success());
    assert!(String::from_utf8_lossy(&run3.stdout).contains("clips              11"));
    let rows = results(&out);
    assert_eq!(rows.len(), expected.len(), "replaced, not appended");
    let jobs: std::collections::HashSet<&str> =
        rows.iter().map(|r| r["job_id"].as_str().unwrap()).collect();
    assert_eq!(jobs.len(), 1, "every line is from the forced run");
}

#[test]
fn dry_run_lists_and_writes_nothing() {
    let dir = TempDir::new("dry-run");
    let out = dir.path().join("out");
    let o = run(&out, &["--dry-run"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("11 clip(s) would be processed"), "{stdout}");
    assert!(
        stdout.contains("9b56a107-5ce9-4051-844f-6b6b2b6e25d4"),
        "the transaction ids are listed"
    );
    assert!(!out.exists(), "nothing written");
}

#[test]
fn bad_arguments_exit_2_before_any_work() {
    for (location, dates) in [
        ("not-a-uuid", "2025-10-06"),
        (DEMO_LOCATION, "2025-02-30"),
        (DEMO_LOCATION, "06/10/2025"),
        (DEMO_LOCATION, "2025-10-07..2025-10-06"),
        (DEMO_LOCATION, "2015-10-06..2025-10-06"),
    ] {
        let o = Command::new(binary("dispatcher"))
            .args(["run", location, dates])
            .env("VOICE_MODEL", "/nonexistent/model.toml")
            .env("VOICE_LOCAL_ROOT", "/nonexistent")
            .output()
            .unwrap();
        assert_eq!(
            o.status.code(),
            Some(2),
            "{location} {dates}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(stderr.lines().count(), 1, "one clear line: {stderr}");
    }
}

/// A clip file over VOICE_MAX_CLIP_MB is a `failed` result of kind `too_large`, not decoded; the
/// other clips of the day go on. Before there was no limit: one huge file could take the
/// memory of every clip a worker held.
#[test]
fn a_clip_over_the_size_limit_is_too_large_and_the_rest_go_on() {
    let data = TempDir::new("too-large");
    it::demo_copies(data.path(), 4, "2025-10-06");
    // 40 s of 16-bit 16 kHz noise: 1.28 MB, over a limit of 1 MB.
    let big = data
        .path()
        .join(DEMO_LOCATION)
        .join("clips/2025-10-06/till9_big.wav");
    let frames: u32 = 16_000 * 40;
    let mut wav = Vec::new();
    for part in [
        &b"RIFF"[..],
        &(36 + frames * 2).to_le_bytes(),
        b"WAVEfmt ",
        &16u32.to_le_bytes(),
        &1u16.to_le_bytes(),
        &1u16.to_le_bytes(),
        &16_000u32.to_le_bytes(),
        &32_000u32.to_le_bytes(),
        &2u16.to_le_bytes(),
        &16u16.to_le_bytes(),
        b"data",
        &(frames * 2).to_le_bytes(),
    ] {
        wav.extend_from_slice(part);
    }
    wav.extend(
        (0..frames).flat_map(|i| ((i.wrapping_mul(7919) % 2000) as i16 - 1000).to_le_bytes()),
    );
    std::fs::write(&big, wav).unwrap();
    let out_dir = TempDir::new("too-large-out");
    let o = Command::new(binary("dispatcher"))
        .args(["run", DEMO_LOCATION, "2025-10-06", "--out"])
        .arg(out_dir.path())
        .current_dir(root())
        .env("VOICE_LOCAL_ROOT", data.path())
        .env("VOICE_MAX_CLIP_MB", "1")
        .env_remove("AMQP_URL")
        .env_remove("VOICE_MODEL")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    let results = results(out_dir.path());
    assert_eq!(results.len(), 5, "{stderr}");
    for r in &results {
        if r["clip"] == "till9_big.wav" {
            assert_eq!(r["status"], "failed");
            assert_eq!(r["error_kind"], "too_large");
            assert!(
                r["error"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("VOICE_MAX_CLIP_MB"),
                "{r}"
            );
        } else {
            assert_ne!(r["status"], "failed", "{r}");
        }
    }
}
