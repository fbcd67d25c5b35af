#!/usr/bin/env python3
"""Offline validation of the deployment files (no Docker engine, no cluster needed).

- Every Kubernetes manifest, and each overlay's patched worker, against the Kubernetes JSON
  schemas bundled in the `kubernetes-validate` package (strict: unknown fields are errors).
- KEDA's objects (no schema offline) and the kustomizations, structurally: what they name exists.
- Every environment variable set in k8s/ and docker-compose.yml is one the services read.
- Probes point at /health and /ready on the port the binary is told to serve.
- docker-compose.yml: services, images, health checks, dependencies, entrypoints.
- docker/Dockerfile: stages, COPY --from, non-root USER, the binaries and model it ships.

Usage: validate_deploy.py [ROOT]   (exit 1 with one line per problem)
"""
import copy
import pathlib
import re
import sys

import kubernetes_validate
import yaml

K8S_VERSION = "1.33.0"
# Read besides the settings: logging, the CronJob's own shell variable, the dynamic loader.
EXTRA_ENV = {"RUST_LOG", "LOCATION_ID", "LD_LIBRARY_PATH", "RABBITMQ_MANAGEMENT_URL"}
BINARIES = {"dispatcher", "worker", "reducer"}

root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve()
problems = []


def problem(where, text):
    problems.append(f"{where}: {text}")


def known_env():
    config = (root / "shared/app/src/config/mod.rs").read_text()
    block = re.search(r"const ENV_KEYS: &\[&str\] = &\[(.*?)\];", config, re.S)
    if not block:
        problem("shared/app/src/config/mod.rs", "ENV_KEYS not found")
        return set()
    return set(re.findall(r'"([A-Z0-9_]+)"', block.group(1))) | EXTRA_ENV


ENV = known_env()


def check_env(where, names):
    for name in names:
        if name not in ENV:
            problem(where, f"environment variable {name} is not one the services read")


def load_all(path):
    try:
        return [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    except yaml.YAMLError as e:
        problem(path.relative_to(root), f"not YAML: {e}")
        return []


def validate(where, doc):
    try:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    except kubernetes_validate.SchemaNotFoundError:
        problem(where, f"no schema for {doc.get('apiVersion')} {doc.get('kind')}")
    except kubernetes_validate.ValidationError as e:
        problem(where, f"{doc.get('kind')}/{doc['metadata'].get('name')}: {e.message} at {list(e.path)}")


def merge(base, patch):
    """Strategic merge as kustomize does it for these fields: maps deep, lists of named
    objects (containers, env) by name, other lists replaced."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = copy.deepcopy(base)
        for k, v in patch.items():
            out[k] = merge(out[k], v) if k in out else copy.deepcopy(v)
        return out
    if isinstance(base, list) and isinstance(patch, list) and all(
        isinstance(x, dict) and "name" in x for x in base + patch
    ):
        out = copy.deepcopy(base)
        for item in patch:
            match = next((i for i, b in enumerate(out) if b["name"] == item["name"]), None)
            if match is None:
                out.append(copy.deepcopy(item))
            else:
                out[match] = merge(out[match], item)
        return out
    return copy.deepcopy(patch)


def containers(doc):
    spec = doc.get("spec", {})
    if doc.get("kind") == "CronJob":
        spec = spec.get("jobTemplate", {}).get("spec", {})
    return spec.get("template", {}).get("spec", {}).get("containers", [])


def check_workload(where, doc, configmaps, secrets):
    for c in containers(doc):
        env_names = [e["name"] for e in c.get("env", [])]
        check_env(where, env_names)
        for source in c.get("envFrom", []):
            ref = source.get("configMapRef") or source.get("secretRef") or {}
            pool = configmaps if "configMapRef" in source else secrets
            if ref.get("name") not in pool:
                problem(where, f"envFrom names {ref.get('name')}, which is not defined")
        command = " ".join(c.get("command", []) + c.get("args", []))
        binary = next((b for b in BINARIES if f"/usr/local/bin/{b}" in command), None)
        if binary is None:
            problem(where, f"container {c['name']} runs none of {sorted(BINARIES)}")
        args = c.get("args", [])
        port = None
        if "--health-check-port" in args:
            port = int(args[args.index("--health-check-port") + 1])
        ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
        for kind, want in (("livenessProbe", "/health"), ("readinessProbe", "/ready")):
            probe = c.get(kind)
            if doc.get("kind") != "Deployment":
                continue
            if probe is None:
                problem(where, f"container {c['name']} has no {kind}")
                continue
            get = probe.get("httpGet", {})
            if get.get("path") != want:
                problem(where, f"{kind} path {get.get('path')} is not {want}")
            target = ports.get(get.get("port"), get.get("port"))
            if target != (port or 8080):
                problem(where, f"{kind} port {get.get('port')} is not the served port {port or 8080}")


def check_k8s():
    base = root / "k8s/base"
    kustomization = yaml.safe_load((base / "kustomization.yaml").read_text())
    docs = []
    for name in kustomization.get("resources", []):
        path = base / name
        if not path.is_file():
            problem("k8s/base/kustomization.yaml", f"resource {name} does not exist")
            continue
        docs += [(f"k8s/base/{name}", d) for d in load_all(path)]
    listed = {p.name for p in base.glob("*.yaml")} - {"kustomization.yaml"}
    for unlisted in sorted(listed - set(kustomization.get("resources", []))):
        problem("k8s/base/kustomization.yaml", f"{unlisted} is not listed in resources")
    configmaps = {d["metadata"]["name"] for _, d in docs if d["kind"] == "ConfigMap"}
    config_data = {}
    for _, d in docs:
        if d["kind"] == "ConfigMap":
            config_data.update(d.get("data", {}))
    secrets = {d["metadata"]["name"] for _, d in docs if d["kind"] == "Secret"}
    deployments = {d["metadata"]["name"]: d for _, d in docs if d["kind"] == "Deployment"}
    auths = {d["metadata"]["name"] for _, d in docs if d["kind"] == "TriggerAuthentication"}
    for where, doc in docs:
        kind = doc["kind"]
        if doc["apiVersion"].startswith("keda.sh/"):
            check_keda(where, doc, deployments, auths, secrets)
            continue
        validate(where, doc)
        if kind in ("ConfigMap",):
            check_env(where, doc.get("data", {}).keys())
        if kind == "Secret":
            check_env(where, doc.get("stringData", {}).keys())
        if kind in ("Deployment", "CronJob"):
            check_workload(where, doc, configmaps, secrets)
        if kind == "Deployment":
            check_memory(where, doc, config_data)
        if kind == "PodDisruptionBudget":
            if doc["spec"].get("maxUnavailable") != 1:
                problem(where, "a PodDisruptionBudget should be maxUnavailable: 1 (minAvailable blocks drains of one replica)")
            labels = doc["spec"]["selector"]["matchLabels"]
            if not any(
                labels.items() <= d["spec"]["template"]["metadata"]["labels"].items()
                for d in deployments.values()
            ):
                problem(where, f"selector {labels} matches no Deployment")
    if "voice-worker" in deployments:
        grace = deployments["voice-worker"]["spec"]["template"]["spec"].get("terminationGracePeriodSeconds", 30)
        if grace <= 120:
            problem("k8s/base/worker.yaml", "terminationGracePeriodSeconds must exceed the worker's 120 s drain")
    for overlay in sorted((root / "k8s/overlays").iterdir()):
        k = yaml.safe_load((overlay / "kustomization.yaml").read_text())
        where = f"k8s/overlays/{overlay.name}"
        if "../../base" not in k.get("resources", []):
            problem(where, "does not build on ../../base")
        for patch in k.get("patches", []):
            target = patch.get("target", {})
            doc = deployments.get(target.get("name"))
            if doc is None or target.get("kind") != "Deployment":
                problem(where, f"patch target {target} is not a base Deployment")
                continue
            patched = merge(doc, yaml.safe_load((overlay / patch["path"]).read_text()))
            validate(f"{where}/{patch['path']} (merged)", patched)
            check_workload(f"{where}/{patch['path']} (merged)", patched, configmaps, secrets)
            check_memory(f"{where}/{patch['path']} (merged)", patched, config_data)
            if overlay.name == "gpu":
                limits = containers(patched)[0].get("resources", {}).get("limits", {})
                if "nvidia.com/gpu" not in limits:
                    problem(where, "the GPU worker does not ask for nvidia.com/gpu")


def memory_bytes(quantity):
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "K": 1e3, "M": 1e6, "G": 1e9}
    for unit, factor in units.items():
        if str(quantity).endswith(unit):
            return float(str(quantity)[: -len(unit)]) * factor
    return float(quantity)


def check_memory(where, doc, config_data):
    """MAX_MEMORY_GB (the container's own, else the ConfigMap's) must sit under the memory limit:
    /health then fails and the pod restarts before the OOM killer takes every clip it holds."""
    for c in containers(doc):
        limit = c.get("resources", {}).get("limits", {}).get("memory")
        if limit is None:
            problem(where, f"container {c['name']} has no memory limit")
            continue
        env = {e["name"]: e.get("value") for e in c.get("env", [])}
        gb = env.get("MAX_MEMORY_GB", config_data.get("MAX_MEMORY_GB"))
        if gb is None or float(gb) * 1e9 >= memory_bytes(limit):
            problem(where, f"MAX_MEMORY_GB {gb} is not below the memory limit {limit}")
        if c["name"] != "worker":
            continue
        # Sized as prefetch × the largest clip: on /tmp its file, in memory its decoded hour.
        setting = lambda k, d: float(env.get(k, config_data.get(k, d)))
        prefetch = setting("VOICE_PARALLEL_WORKERS", 5)
        clip_mb = setting("VOICE_MAX_CLIP_MB", 100)
        volumes = doc["spec"]["template"]["spec"].get("volumes", [])
        tmp = next((v for v in volumes if v.get("name") == "tmp"), {})
        size = tmp.get("emptyDir", {}).get("sizeLimit")
        if size is None or memory_bytes(size) < prefetch * clip_mb * 1e6:
            problem(where, f"/tmp ({size}) holds less than {prefetch:.0f} clips of {clip_mb:.0f} MB")
        decoded = prefetch * 3600 * 16_000 * 4
        if gb is not None and float(gb) * 1e9 < decoded + 0.5e9:
            problem(where, f"MAX_MEMORY_GB {gb} leaves no room for {prefetch:.0f} decoded clips of 1 h")


def check_keda(where, doc, deployments, auths, secrets):
    kind, spec = doc["kind"], doc.get("spec", {})
    if kind == "TriggerAuthentication":
        for ref in spec.get("secretTargetRef", []):
            if ref.get("name") not in secrets:
                problem(where, f"secretTargetRef names {ref.get('name')}, not a Secret here")
            if ref.get("key") not in ENV:
                problem(where, f"secretTargetRef key {ref.get('key')} is not a setting")
        return
    if kind != "ScaledObject" or doc["apiVersion"] != "keda.sh/v1alpha1":
        problem(where, f"unexpected KEDA object {doc['apiVersion']} {kind}")
        return
    if spec.get("scaleTargetRef", {}).get("name") not in deployments:
        problem(where, "scaleTargetRef names no Deployment")
    low, high = spec.get("minReplicaCount", 0), spec.get("maxReplicaCount", 100)
    if not (isinstance(low, int) and isinstance(high, int) and 0 <= low <= high):
        problem(where, f"replica bounds {low}..{high}")
    for trigger in spec.get("triggers", []):
        meta = trigger.get("metadata", {})
        if trigger.get("type") != "rabbitmq":
            problem(where, f"trigger type {trigger.get('type')}: expected rabbitmq")
        if meta.get("queueName") != "voice.clips":
            problem(where, f"the trigger watches {meta.get('queueName')}, not voice.clips")
        if meta.get("mode") not in ("QueueLength", "MessageRate"):
            problem(where, f"trigger mode {meta.get('mode')}")
        if meta.get("protocol") != "http":
            problem(where, f"trigger protocol {meta.get('protocol')}: only http counts unacknowledged messages")
        if trigger.get("authenticationRef", {}).get("name") not in auths:
            problem(where, "authenticationRef names no TriggerAuthentication")


def dockerfile_stages():
    text = (root / "docker/Dockerfile").read_text()
    stages, current = {}, None
    for raw in re.sub(r"\\\n", " ", text).splitlines():
        line = raw.strip()
        m = re.match(r"FROM\s+(\S+)(?:\s+AS\s+(\S+))?", line, re.I)
        if m:
            current = m.group(2) or m.group(1)
            stages[current] = {"lines": [], "base": m.group(1)}
            continue
        if current and line and not line.startswith("#"):
            stages[current]["lines"].append(line)
    return stages


def check_dockerfile():
    where = "docker/Dockerfile"
    stages = dockerfile_stages()
    for name, stage in stages.items():
        for line in stage["lines"]:
            m = re.match(r"COPY\s+--from=(\S+)", line)
            if m and m.group(1) not in stages:
                problem(where, f"stage {name} copies from unknown stage {m.group(1)}")
            m = re.match(r"COPY\s+(?!--)(.+)\s+(\S+)$", line)
            if m:
                for src in m.group(1).split():
                    if not (root / src).exists():
                        problem(where, f"stage {name} copies {src}, which is not in the repository")
    for final in ("cpu", "gpu"):
        stage = stages.get(final)
        if stage is None:
            problem(where, f"no `{final}` target")
            continue
        users = [l.split()[1] for l in stage["lines"] if l.startswith("USER ")]
        if not users or users[-1] in ("root", "0"):
            problem(where, f"the {final} image does not run as a non-root user")
        entry = [l for l in stage["lines"] if l.startswith("ENTRYPOINT")]
        if not entry:
            problem(where, f"the {final} image has no ENTRYPOINT")
        for line in stage["lines"]:
            m = re.match(r"ENV\s+(.*)", line)
            if m:
                check_env(f"{where} ({final})", re.findall(r"([A-Z][A-Z0-9_]+)=", m.group(1)))
    setup = (root / "scripts/setup-onnxruntime.sh").read_text()
    version = re.search(r"^VERSION=(\S+)", setup, re.M).group(1)
    if f"ARG ORT_VERSION={version}" not in (root / "docker/Dockerfile").read_text():
        problem(where, f"ORT_VERSION differs from scripts/setup-onnxruntime.sh ({version})")
    if "cudnn" not in stages.get("gpu", {}).get("base", "") or ":13." not in stages.get("gpu", {}).get("base", ""):
        problem(where, "the gpu image must build on CUDA 13 with cuDNN")
    return stages


def check_compose(stages):
    where = "docker-compose.yml"
    compose = yaml.safe_load((root / where).read_text())
    services = compose.get("services", {})
    for want in ("rabbitmq", "postgres", "worker", "reducer", "dispatcher"):
        if want not in services:
            problem(where, f"no {want} service")
    if "127.0.0.1:15672:15672" not in services.get("rabbitmq", {}).get("ports", []):
        problem(where, "RabbitMQ's management UI (15672) is not published on 127.0.0.1")
    for name in ("rabbitmq", "postgres"):
        for port in services.get(name, {}).get("ports", []):
            if not str(port).startswith("127.0.0.1:"):
                problem(where, f"{name} publishes {port} beyond this machine (bind 127.0.0.1)")
    images = {s.get("image") for s in services.values() if "build" in s}
    for name, svc in services.items():
        for dep in svc.get("depends_on", {}):
            if dep not in services:
                problem(where, f"{name} depends on unknown service {dep}")
        if "build" in svc:
            target = svc["build"].get("target")
            if target not in stages:
                problem(where, f"{name} builds target {target}, not a Dockerfile stage")
        if name in BINARIES:
            if svc.get("image") not in images:
                problem(where, f"{name} uses an image no service builds")
            entry = " ".join(svc.get("entrypoint", []))
            if f"/usr/local/bin/{name}" != entry:
                problem(where, f"{name} runs {entry}")
            check_env(where, svc.get("environment", {}).keys())
            if name != "dispatcher" and "healthcheck" not in svc:
                problem(where, f"{name} has no healthcheck")
        elif "healthcheck" not in svc:
            problem(where, f"{name} has no healthcheck")
    if "tools" not in services.get("dispatcher", {}).get("profiles", []):
        problem(where, "the dispatcher should be a one-off service (profile tools)")


check_k8s()
check_compose(check_dockerfile())
for p in problems:
    print(p)
if problems:
    sys.exit(1)
print("deployment files: valid (k8s schemas {}, KEDA, kustomize, compose, Dockerfile)".format(K8S_VERSION))
