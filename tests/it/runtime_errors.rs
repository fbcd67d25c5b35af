//! A missing or broken model or runtime library is one clear error naming the fix, never a panic.

use std::path::Path;
use std::process::Command;

use it::{TempDir, binary, demo_location, root};

/// A one-clip labelled set in the eval layout, made from demo files.
fn tiny_dataset(dir: &Path) {
    let demo = demo_location();
    for (worker, sample) in [("Allison", "01.wav"), ("Carlo", "01.wav")] {
        let to = dir.join("enroll").join(worker);
        std::fs::create_dir_all(&to).unwrap();
        std::fs::copy(
            demo.join("voice_samples").join(worker).join(sample),
            to.join(sample),
        )
        .unwrap();
    }
    std::fs::create_dir_all(dir.join("clips")).unwrap();
    std::fs::copy(
        demo.join("clips/2025-10-06/till1_47019585-bbbe-4230-b72c-a16f4c0e42f8.wav"),
        dir.join("clips/c1.wav"),
    )
    .unwrap();
    std::fs::write(
        dir.join("labels.csv"),
        "clip,employee,condition,duration_s,other_speaker,segments\nc1,Carlo,standard,12.1,x,0.5-4.0:x;4.5-9.0:Carlo\n",
    )
    .unwrap();
}

fn eval_with(envs: &[(&str, &str)]) -> (i32, String) {
    let data = TempDir::new("tiny-eval");
    tiny_dataset(data.path());
    let out = Command::new(binary("dispatcher"))
        .args(["eval", "--oracle-turns", "--data"])
        .arg(data.path())
        .current_dir(root())
        .env_remove("VOICE_MODEL")
        .env_remove("ORT_DYLIB_PATH")
        .envs(envs.iter().copied())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "{stderr}");
    (out.status.code().unwrap_or(-1), stderr)
}

#[test]
fn the_tiny_set_runs_with_the_defaults() {
    let (code, stderr) = eval_with(&[]);
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn a_missing_runtime_library_names_the_setup_command() {
    let (code, stderr) = eval_with(&[("ORT_DYLIB_PATH", "/nonexistent/libonnxruntime.so.1.31.1")]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("not found") && stderr.contains("make setup"),
        "{stderr}"
    );
}

#[test]
fn a_broken_runtime_library_names_the_setup_command() {
    let dir = TempDir::new("broken-ort");
    let fake = dir.path().join("libonnxruntime.so.1.31.1");
    std::fs::write(&fake, "this is not a shared library").unwrap();
    let (code, stderr) = eval_with(&[("ORT_DYLIB_PATH", fake.to_str().unwrap())]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("cannot be loaded") && stderr.contains("make setup"),
        "{stderr}"
    );
}

#[test]
fn a_missing_manifest_or_model_file_is_named() {
    let (code, stderr) = eval_with(&[("VOICE_MODEL", "/nonexistent/model.toml")]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("cannot read model manifest /nonexistent/model.toml"),
        "{stderr}"
    );

    let dir = TempDir::new("no-onnx");
    let manifest = std::fs::read_to_string(root().join("models/ge2e/ge2e.toml")).unwrap();
    let path = dir.path().join("ge2e.toml");
    std::fs::write(&path, manifest).unwrap();
    let (code, stderr) = eval_with(&[("VOICE_MODEL", path.to_str().unwrap())]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("model file") && stderr.contains("not found"),
        "{stderr}"
    );

    std::fs::write(&path, "id = \"x\"\n").unwrap();
    let (code, stderr) = eval_with(&[("VOICE_MODEL", path.to_str().unwrap())]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("is not valid"), "{stderr}");
}

#[test]
fn bad_arguments_exit_2() {
    let (code, stderr) = eval_with(&[("VOICE_DIARIZATION_THRESHOLD", "high")]);
    assert_eq!(code, 2, "{stderr}");
    let out = Command::new(binary("dispatcher"))
        .args(["eval", "--data", "/nonexistent", "--oracle-turns"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(binary("dispatcher"))
        .args(["eval"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
