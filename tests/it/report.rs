//! `dispatcher report`: one self-contained HTML page per job, from a standalone output folder
//! or from Postgres, rendered in headless Chromium (`scripts/render-report.sh`).

use std::process::Command;

use it::{DEMO_LOCATION, Services, TempDir, binary, ort_library, root};

fn report(args: &[&str], envs: &[(&str, &str)]) -> String {
    let out = Command::new(binary("dispatcher"))
        .arg("report")
        .args(args)
        .current_dir(root())
        .env_remove("VOICE_MODEL")
        .envs(envs.iter().copied())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    text
}

#[test]
fn a_standalone_runs_report_renders_in_chromium() {
    let dir = TempDir::new("report");
    let out_dir = dir.path().join("out");
    let run = Command::new(binary("dispatcher"))
        .args(["run", DEMO_LOCATION, "2025-10-06", "--out"])
        .arg(&out_dir)
        .current_dir(root())
        .env("VOICE_LOCAL_ROOT", root().join("demo"))
        .env("ORT_DYLIB_PATH", ort_library())
        .env_remove("AMQP_URL")
        .env_remove("DATABASE_URL")
        .env_remove("VOICE_MODEL")
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let page = dir.path().join("report.html");
    report(
        &[
            "--out",
            &out_dir.to_string_lossy(),
            "--html",
            &page.to_string_lossy(),
        ],
        &[],
    );
    let html = std::fs::read_to_string(&page).unwrap();
    for name in ["Allison", "Carlo", "June", "threshold", "Per employee"] {
        assert!(html.contains(name), "{name} missing");
    }
    assert_eq!(html.matches("<svg class=\"timeline\"").count(), 11);
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "self-contained"
    );

    let shot = dir.path().join("report.png");
    let rendered = Command::new(root().join("scripts/render-report.sh"))
        .arg(&page)
        .arg(&shot)
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&rendered.stdout);
    assert!(
        rendered.status.success(),
        "{}",
        String::from_utf8_lossy(&rendered.stderr)
    );
    assert!(
        dom.contains("data-rendered=\"11\""),
        "Chromium did not run the page's script over 11 timelines"
    );
    let png = std::fs::read(&shot).unwrap_or_default();
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 20_000,
        "{} bytes",
        png.len()
    );
}

#[test]
fn a_jobs_report_comes_from_postgres() {
    let services = Services::new("report");
    let data = TempDir::new("report-db");
    it::demo_copies(data.path(), 11, "2025-10-06");
    let _reducer = it::Child::spawn(
        {
            let mut c = services.command("reducer", data.path());
            c.args(["--health-check-port", "0"]);
            c
        },
        data.path().join("reducer.log"),
    );
    let _worker = it::Child::spawn(
        {
            let mut c = services.command("worker", data.path());
            c.args(["--health-check-port", "0"]);
            c
        },
        data.path().join("worker.log"),
    );
    let out = services
        .command("dispatcher", data.path())
        .args(["run", DEMO_LOCATION, "2025-10-06", "--wait"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let job = services.psql("SELECT job_id FROM voice_jobs");
    let page = data.path().join("job.html");
    let url = services.database_url();
    report(
        &[&job, "--html", &page.to_string_lossy()],
        &[("DATABASE_URL", &url)],
    );
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(
        html.contains(&job) && html.contains("11 of 11 done"),
        "{html}"
    );
    assert_eq!(html.matches("<svg class=\"timeline\"").count(), 11);

    let missing = Command::new(binary("dispatcher"))
        .args(["report", "no-such-job", "--html", "/dev/null"])
        .env("DATABASE_URL", &url)
        .current_dir(root())
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("not in voice_jobs"));
}
