//! The deployment files, validated offline (no Docker engine or cluster here) by
//! `scripts/validate_deploy.py`: Kubernetes schemas, KEDA, kustomize, compose, the Dockerfile,
//! environment names and probes. The second test shows it catching each kind of mistake.

use std::path::Path;
use std::process::{Command, Output};

use it::{TempDir, root};

fn validate(tree: &Path) -> Output {
    Command::new(root().join(".cache/venv-deploy/bin/python"))
        .arg(root().join("scripts/validate_deploy.py"))
        .arg(tree)
        .output()
        .unwrap_or_else(|e| panic!("the validator needs `make deploy-venv`: {e}"))
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn the_deployment_files_validate_offline() {
    let out = validate(&root());
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("deployment files: valid"));
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_tree(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

fn rewrite(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{}: no `{from}`", path.display());
    std::fs::write(path, text.replacen(from, to, 1)).unwrap();
}

#[test]
fn the_validation_catches_each_kind_of_mistake() {
    let tree = TempDir::new("deploy");
    let t = tree.path();
    for dir in ["k8s", "docker"] {
        copy_tree(&root().join(dir), &t.join(dir));
    }
    for file in [
        "docker-compose.yml",
        "shared/app/src/config/mod.rs",
        "scripts/setup-onnxruntime.sh",
    ] {
        std::fs::create_dir_all(t.join(file).parent().unwrap()).unwrap();
        std::fs::copy(root().join(file), t.join(file)).unwrap();
    }
    for linked in ["models", "config", "demo"] {
        std::os::unix::fs::symlink(root().join(linked), t.join(linked)).unwrap();
    }
    assert!(
        validate(t).status.success(),
        "the copy validates before the mistakes"
    );

    rewrite(
        &t.join("k8s/base/configmap.yaml"),
        "MAX_API_FAILURES",
        "MAX_API_FAILURE",
    );
    rewrite(
        &t.join("k8s/base/worker.yaml"),
        "path: /ready",
        "path: /readyz",
    );
    rewrite(
        &t.join("k8s/base/reducer.yaml"),
        "containerPort: 8080",
        "containerPort: 9090",
    );
    rewrite(
        &t.join("k8s/base/keda-scaledobject.yaml"),
        "queueName: voice.clips",
        "queueName: voice.clip",
    );
    rewrite(
        &t.join("k8s/base/pdb.yaml"),
        "maxUnavailable: 1",
        "maxUnavailible: 1",
    );
    rewrite(
        &t.join("k8s/base/configmap.yaml"),
        "MAX_MEMORY_GB: \"3.5\"",
        "MAX_MEMORY_GB: \"7.5\"",
    );
    rewrite(
        &t.join("docker-compose.yml"),
        "\"127.0.0.1:5432:5432\"",
        "\"5432:5432\"",
    );
    rewrite(
        &t.join("k8s/base/keda-scaledobject.yaml"),
        "protocol: http",
        "protocol: amqp",
    );
    rewrite(
        &t.join("k8s/overlays/gpu/worker-gpu.yaml"),
        "nvidia.com/gpu: \"1\"\n            limits",
        "nvidia.com/gpu: \"1\"\n            limitz",
    );
    rewrite(
        &t.join("docker-compose.yml"),
        "condition: service_healthy\n      postgres",
        "condition: service_healthy\n      postgress",
    );
    rewrite(
        &t.join("docker/Dockerfile"),
        "USER voice\nEXPOSE 8080\nHEALTHCHECK --interval=30s --timeout=5s --start-period=20s",
        "USER root\nEXPOSE 8080\nHEALTHCHECK --interval=30s --timeout=5s --start-period=20s",
    );
    let out = validate(t);
    let report = text(&out);
    assert_eq!(out.status.code(), Some(1), "{report}");
    for expected in [
        "MAX_API_FAILURE is not one the services read",
        "readinessProbe path /readyz is not /ready",
        "livenessProbe port http is not the served port 8080",
        "the trigger watches voice.clip, not voice.clips",
        "PodDisruptionBudget/voice-worker: Additional properties are not allowed ('maxUnavailible'",
        "MAX_MEMORY_GB 7.5 is not below the memory limit 4Gi",
        "postgres publishes 5432:5432 beyond this machine",
        "only http counts unacknowledged messages",
        "worker-gpu.yaml (merged)",
        "depends on unknown service postgress",
        "the cpu image does not run as a non-root user",
    ] {
        assert!(
            report.contains(expected),
            "`{expected}` not reported:\n{report}"
        );
    }
}
