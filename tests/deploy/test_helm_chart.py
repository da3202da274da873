"""helm/tessera: values against the schema, template structure, Chart.yaml, rendering.

Rendering needs the `helm` binary; where it is missing the rendering tests are skipped
and the rest still run. The NATS chart is vendored in charts/; should it be missing, the
chart is rendered with the dependency removed. The example values files, checkov, the
Kubernetes schemas and the fleet's invariants are in test_chart_examples.py.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "tessera"
SERVICES = ("annotations", "ingest", "export", "inference")
WORKLOADS = ("gateway", *SERVICES)
EXTERNAL_NATS = "nats://nats.example.internal:4222"

ACTION = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
OPENERS = ("if", "range", "with", "define", "block")


def load_yaml(path: Path) -> Any:
    """One YAML document."""
    return yaml.safe_load(path.read_text())


def values() -> dict[str, Any]:
    """A fresh copy of the chart's default values."""
    loaded: dict[str, Any] = load_yaml(CHART / "values.yaml")
    return loaded


def validator() -> jsonschema.Draft7Validator:
    """A draft-07 validator of values.schema.json."""
    schema = json.loads((CHART / "values.schema.json").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def template_structure_errors(text: str) -> list[str]:
    """What is wrong with the `{{ }}` actions and blocks of one template, if anything."""
    errors: list[str] = []
    outside = ACTION.sub("", text)
    if "{{" in outside or "}}" in outside:
        errors.append("unbalanced {{ }}")
    stack: list[str] = []
    for match in ACTION.finditer(text):
        body = match.group(1).strip().removeprefix("-").removesuffix("-").strip()
        if body.startswith("/*"):
            if not body.endswith("*/"):
                errors.append(f"unterminated comment at offset {match.start()}")
            continue
        word = body.split(maxsplit=1)[0] if body else ""
        if word in OPENERS:
            stack.append(word)
        elif word == "else":
            if not stack or stack[-1] not in ("if", "range", "with"):
                errors.append(f"else outside if/range/with at offset {match.start()}")
        elif word == "end":
            if not stack:
                errors.append(f"end without a block at offset {match.start()}")
            else:
                stack.pop()
    errors.extend(f"{opener} is never closed" for opener in stack)
    return errors


def leaves(node: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """(path, value) of every scalar in a values tree."""
    if isinstance(node, dict):
        for key, child in node.items():
            yield from leaves(child, (*path, str(key)))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            yield from leaves(child, (*path, str(index)))
    else:
        yield path, node


# -- values and schema -------------------------------------------------------------


def test_values_validate_against_the_schema() -> None:
    errors = sorted(validator().iter_errors(values()), key=str)
    assert not errors, [f"{list(e.path)}: {e.message}" for e in errors]


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("storageClass", "iops"), 100),
        (("secrets", "database", "existingSecret"), ""),
        (("nats", "config", "jetstream", "enabled"), False),
        (("workloads", "export", "nodePool"), "somewhere"),
        (("workloads", "ingest", "resources"), {"requests": {"cpu": "1"}}),
        (("migrations", "order"), ["annotations", "annotations"]),
        (("serviceAccounts", "ingest", "roleArn"), "not-an-arn"),
        (("serviceAccounts", "worker"), {"roleArn": "", "annotations": {}}),
        (("serviceAccount",), {"create": True}),
        (("environment"), "production"),
        (("databasePassword",), "hunter2"),
        (("networkPolicy", "s3CIDRs"), ["everywhere"]),
        (("networkPolicy", "databaseCIDRs"), []),
        (("ingress", "pathStyle"), "glob"),
        (("ingress", "tlsSecretName"), "tls"),
        (
            ("ingress", "alb"),
            {
                "enabled": True,
                "scheme": "internet-facing",
                "certificateArn": "",
                "groupName": "tessera",
                "sslPolicy": "x",
                "idleTimeoutSeconds": 60,
                "annotations": {},
            },
        ),
        (("ingress", "tls"), {"enabled": True, "secretName": ""}),
        (("autoscaling", "keda", "export", "consumers"), [{"consumer": "nope", "lagThreshold": 1}]),
        (("autoscaling", "keda", "triton", "minReplicas"), 0),
        (("database", "externalSecrets", "enabled"), True),
        (("database", "externalSecrets", "storeKind"), "Vault"),
        (("nats", "streamReplicas"), 0),
        (("triton", "securityContext", "runAsUser"), 0),
    ],
)
def test_the_schema_refuses_bad_values(path: tuple[str, ...] | str, value: object) -> None:
    keys = (path,) if isinstance(path, str) else path
    candidate = copy.deepcopy(values())
    node = candidate
    for key in keys[:-1]:
        node = node[key]
    node[keys[-1]] = value
    assert list(validator().iter_errors(candidate))


def test_values_hold_no_secret_values() -> None:
    """Secrets are referenced by name and key; nothing secret-looking has a literal value."""
    allowed_keys = {
        "existingSecret",
        "urlKey",
        "accessKeyKey",
        "secretKeyKey",
        "passwordKey",
        "tokenKey",
        "appRolePasswordKey",
        "secretName",
        # Secrets Manager names of the database secrets, for the External Secrets Operator.
        "appSecret",
        "ownerSecret",
        # A pod field (false), in the NATS chart's pod template.
        "automountServiceAccountToken",
    }
    for path, value in leaves(values()):
        key = path[-1]
        if not re.search("password|secret|token", key, re.IGNORECASE):
            continue
        if key in allowed_keys or "secretKeyRef" in path:
            continue
        assert isinstance(value, str)
        assert re.fullmatch(r"<< \$[A-Z_]+ >>", value), f"{'.'.join(path)} holds a value"


def test_workloads_run_where_the_design_puts_them() -> None:
    loaded = values()
    workloads = loaded["workloads"]
    assert set(workloads) == set(WORKLOADS)
    assert {name: w["nodePool"] for name, w in workloads.items()} == {
        "gateway": "api",
        "annotations": "api",
        "inference": "api",
        "ingest": "media",
        "export": "media",
    }
    assert all(workload["autoscaling"]["enabled"] for workload in workloads.values())
    assert workloads["export"]["scratch"]["enabled"] is True
    assert workloads["ingest"]["scratch"]["enabled"] is True
    assert loaded["nats"]["streamReplicas"] == 1
    assert loaded["triton"]["replicas"] >= 2
    assert loaded["triton"]["securityContext"]["runAsUser"] == 1000
    assert loaded["networkPolicy"]["enabled"] is True
    assert loaded["storageClass"]["iops"] == 3000
    assert loaded["triton"]["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert loaded["triton"]["image"]["repository"].startswith("nvcr.io/nvidia/tritonserver")
    assert loaded["migrations"]["order"] == list(SERVICES)
    assert loaded["nats"]["config"]["jetstream"]["enabled"] is True
    assert (
        loaded["nats"]["container"]["env"]["NATS_TOKEN"]["valueFrom"]["secretKeyRef"]["name"]
        == loaded["secrets"]["nats"]["existingSecret"]
    )
    jetstream_pvc = loaded["nats"]["config"]["jetstream"]["fileStore"]["pvc"]
    assert jetstream_pvc["storageClassName"] == loaded["storageClass"]["name"]


# -- templates and Chart.yaml -------------------------------------------------------


def test_every_template_has_balanced_actions_and_blocks() -> None:
    templates = sorted((CHART / "templates").iterdir())
    assert {path.name for path in templates} >= {
        "_helpers.tpl",
        "workloads.yaml",
        "triton.yaml",
        "migrate-job.yaml",
        "ingress.yaml",
        "storageclass.yaml",
        "serviceaccount.yaml",
        "networkpolicies.yaml",
        "scaledobjects.yaml",
        "externalsecrets.yaml",
    }
    for path in templates:
        assert template_structure_errors(path.read_text()) == [], path.name


@pytest.mark.parametrize(
    "text",
    [
        "{{ if .x }}a",
        "{{ end }}",
        "a }} b",
        "{{ if .x }}{{ end }}{{ end }}",
        "{{/* open",
        "{{ else }}",
    ],
)
def test_the_structure_check_catches_broken_templates(text: str) -> None:
    assert template_structure_errors(text)


def test_chart_yaml() -> None:
    chart = load_yaml(CHART / "Chart.yaml")
    assert chart["apiVersion"] == "v2"
    assert chart["name"] == "tessera"
    assert chart["type"] == "application"
    assert re.fullmatch(r"\d+\.\d+\.\d+", chart["version"])
    gateway = tomllib.loads((ROOT / "services" / "gateway" / "pyproject.toml").read_text())
    assert chart["appVersion"] == gateway["project"]["version"]
    (nats,) = chart["dependencies"]
    assert nats["name"] == "nats"
    assert nats["repository"] == "https://nats-io.github.io/k8s/helm/charts/"
    assert re.fullmatch(r"\d+\.\d+\.\d+", nats["version"])
    assert nats["condition"] == "nats.enabled"


# -- rendering with helm ----------------------------------------------------------------


@pytest.fixture(scope="module")
def helm() -> str:
    """The helm binary, or a skip."""
    binary = shutil.which("helm")
    if binary is None:
        pytest.skip("helm is not on PATH; the chart is not rendered")
    return binary


@pytest.fixture(scope="module")
def chart_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the chart that helm can render offline.

    With the NATS chart fetched into charts/ the copy is the chart as it is; without it
    the dependency is removed from Chart.yaml (helm refuses missing dependencies) and
    the renders below set nats.enabled=false with an external natsUrl.
    """
    target = tmp_path_factory.mktemp("chart") / "tessera"
    shutil.copytree(CHART, target)
    if not list((target / "charts").glob("nats-*.tgz")):
        chart = load_yaml(target / "Chart.yaml")
        del chart["dependencies"]
        (target / "Chart.yaml").write_text(yaml.safe_dump(chart, sort_keys=False))
    return target


def render(helm: str, chart: Path, *settings: str) -> subprocess.CompletedProcess[str]:
    """`helm template` of the chart with `--set` overrides."""
    arguments = [helm, "template", "rel", str(chart), "--namespace", "tessera"]
    if not list((chart / "charts").glob("nats-*.tgz")):
        arguments += ["--set", "nats.enabled=false", "--set", f"natsUrl={EXTERNAL_NATS}"]
    for setting in settings:
        arguments += ["--set", setting]
    return subprocess.run(arguments, capture_output=True, text=True, check=False, timeout=120)


@pytest.fixture(scope="module")
def manifests(helm: str, chart_dir: Path) -> list[dict[str, Any]]:
    """Every document the chart renders, parsed."""
    result = render(
        helm,
        chart_dir,
        "serviceAccounts.ingest.roleArn=arn:aws:iam::123456789012:role/tessera-ingest",
        "serviceAccounts.triton.roleArn=arn:aws:iam::123456789012:role/tessera-triton",
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def find(manifests: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    """The one rendered object of a kind and name."""
    (found,) = [m for m in manifests if m["kind"] == kind and m["metadata"]["name"] == name]
    return found


def test_helm_lint_is_clean(helm: str, chart_dir: Path) -> None:
    arguments = [helm, "lint", "--strict", str(chart_dir)]
    if not list((chart_dir / "charts").glob("nats-*.tgz")):
        arguments += ["--set", "nats.enabled=false", "--set", f"natsUrl={EXTERNAL_NATS}"]
    result = subprocess.run(arguments, capture_output=True, text=True, check=False, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_helm_applies_the_schema(helm: str, chart_dir: Path) -> None:
    result = render(helm, chart_dir, "storageClass.iops=100")
    assert result.returncode != 0
    assert "iops" in result.stderr


def test_nats_url_is_required_without_the_bundled_nats(helm: str, chart_dir: Path) -> None:
    arguments = [helm, "template", "rel", str(chart_dir), "--set", "nats.enabled=false"]
    result = subprocess.run(arguments, capture_output=True, text=True, check=False, timeout=120)
    assert result.returncode != 0
    assert "natsUrl is required" in result.stderr


def test_rendered_workloads(manifests: list[dict[str, Any]]) -> None:
    bundled_nats = any(m["kind"] == "StatefulSet" for m in manifests)
    nats_url = "nats://rel-nats:4222" if bundled_nats else EXTERNAL_NATS
    placement = {
        "gateway": "api",
        "annotations": "api",
        "inference": "api",
        "ingest": "media",
        "export": "media",
    }
    for name, pool in placement.items():
        deployment = find(manifests, "Deployment", f"rel-tessera-{name}")
        pod = deployment["spec"]["template"]
        (container,) = pod["spec"]["containers"]
        assert container["command"][:3] == [
            "uvicorn",
            "--factory",
            f"tessera.{name}.app:create_app",
        ]
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] in ("/readyz", "/healthz")
        assert container["resources"]["requests"]
        assert container["resources"]["limits"]
        assert pod["spec"]["nodeSelector"] == {"tessera.io/node-pool": pool}
        assert pod["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
        assert pod["metadata"]["annotations"]["prometheus.io/path"] == "/metrics"
        assert pod["spec"]["serviceAccountName"] == f"rel-tessera-{name}"
        assert pod["spec"]["automountServiceAccountToken"] is False
        find(manifests, "Service", f"rel-tessera-{name}")
        env = {item["name"]: item for item in container["env"]}
        if name == "gateway":
            upstreams = json.loads(env["TESSERA_GATEWAY_UPSTREAMS"]["value"])
            assert upstreams == {s: f"http://rel-tessera-{s}:8000" for s in SERVICES}
        else:
            assert env["TESSERA_ENV"]["value"] == "prod"
            assert env["TESSERA_MIGRATE_ON_START"]["value"] == "false"
            assert env["TESSERA_NATS_URL"]["value"] == nats_url
            assert env["TESSERA_NATS_STREAM_REPLICAS"]["value"] == "1"
            for secret in ("TESSERA_DATABASE_URL", "TESSERA_BOOTSTRAP_ADMIN_PASSWORD"):
                assert "secretKeyRef" in env[secret]["valueFrom"]
            assert "TESSERA_S3_SECRET_KEY" not in env, (
                "no static keys: the IRSA role signs S3 calls"
            )
    inference = find(manifests, "Deployment", "rel-tessera-inference")["spec"]["template"]
    (container,) = inference["spec"]["containers"]
    env = {item["name"]: item for item in container["env"]}
    signing = env["TESSERA_TRACKER_STATE_SECRET"]["valueFrom"]["secretKeyRef"]
    assert signing == {"name": "tessera-tracker-state", "key": "signing-key"}
    hpas = {m["metadata"]["name"] for m in manifests if m["kind"] == "HorizontalPodAutoscaler"}
    assert hpas == {f"rel-tessera-{name}" for name in WORKLOADS}
    assert not [m for m in manifests if m["kind"] == "ScaledObject"]
    export = find(manifests, "Deployment", "rel-tessera-export")["spec"]["template"]["spec"]
    scratch = {volume["name"]: volume for volume in export["volumes"]}["scratch"]
    claim = scratch["ephemeral"]["volumeClaimTemplate"]["spec"]
    assert claim["storageClassName"] == "tessera-gp3"


def test_rendered_triton_and_storage(manifests: list[dict[str, Any]]) -> None:
    triton = find(manifests, "Deployment", "rel-tessera-triton")["spec"]["template"]["spec"]
    (container,) = triton["containers"]
    assert container["image"].startswith("nvcr.io/nvidia/tritonserver:")
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert "--model-repository=s3://tessera/triton-models" in container["command"]
    gpu_toleration = {
        "key": "nvidia.com/gpu",
        "operator": "Equal",
        "value": "true",
        "effect": "NoSchedule",
    }
    assert gpu_toleration in triton["tolerations"]
    assert triton["nodeSelector"] == {"tessera.io/node-pool": "gpu"}
    storage = find(manifests, "StorageClass", "tessera-gp3")
    assert storage["provisioner"] == "ebs.csi.aws.com"
    assert storage["parameters"]["type"] == "gp3"
    assert storage["parameters"]["iops"] == "3000"
    account = find(manifests, "ServiceAccount", "rel-tessera-triton")
    assert account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"] == (
        "arn:aws:iam::123456789012:role/tessera-triton"
    )
    assert triton["serviceAccountName"] == "rel-tessera-triton"
    assert triton["securityContext"]["runAsUser"] == 1000
    assert "annotations" not in find(manifests, "ServiceAccount", "rel-tessera-gateway")["metadata"]


def test_rendered_migration_job(manifests: list[dict[str, Any]]) -> None:
    job = find(manifests, "Job", "rel-tessera-migrate")
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    pod = job["spec"]["template"]["spec"]
    steps = [*pod.get("initContainers", []), *pod["containers"]]
    assert [step["command"] for step in steps] == [
        ["tessera-migrate", f"tessera.{service}.migrations"] for service in SERVICES
    ]
    assert [step["image"] for step in steps] == [f"tessera-{s}:0.1.0" for s in SERVICES]
    assert "serviceAccountName" not in pod


def ingress_paths(ingress: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(path, pathType, Service) of the one rule of an Ingress."""
    (rule,) = ingress["spec"]["rules"]
    return [
        (path["path"], path["pathType"], path["backend"]["service"]["name"])
        for path in rule["http"]["paths"]
    ]


def test_rendered_ingress_follows_routes_json(manifests: list[dict[str, Any]]) -> None:
    """By default: the standard (Exact and Prefix) paths, without regex annotations."""
    ingress = find(manifests, "Ingress", "rel-tessera")
    assert "nginx.ingress.kubernetes.io/use-regex" not in ingress["metadata"]["annotations"]
    routes = json.loads((CHART / "files" / "routes.json").read_text())
    assert ingress_paths(ingress) == [
        (entry["path"], entry["pathType"], f"rel-tessera-{entry['service']}")
        for entry in routes["standard"]
    ]


def test_rendered_regex_ingress_follows_routes_json(helm: str, chart_dir: Path) -> None:
    result = render(helm, chart_dir, "ingress.pathStyle=regex")
    assert result.returncode == 0, result.stderr
    manifests = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    ingress = find(manifests, "Ingress", "rel-tessera")
    assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/use-regex"] == "true"
    routes = json.loads((CHART / "files" / "routes.json").read_text())
    assert ingress_paths(ingress) == [
        (entry["path"], "ImplementationSpecific", f"rel-tessera-{entry['service']}")
        for entry in routes["paths"]
    ]


def test_regex_paths_need_ingress_nginx(helm: str, chart_dir: Path) -> None:
    result = render(helm, chart_dir, "ingress.pathStyle=regex", "ingress.className=traefik")
    assert result.returncode != 0
    assert "pathStyle regex needs ingress-nginx" in result.stderr


def test_stream_replicas_cannot_exceed_the_nats_servers(helm: str, chart_dir: Path) -> None:
    if not list((chart_dir / "charts").glob("nats-*.tgz")):
        pytest.skip("the bundled NATS chart is not in charts/")
    assert render(helm, chart_dir, "nats.streamReplicas=3").returncode == 0
    result = render(helm, chart_dir, "nats.streamReplicas=3", "nats.config.cluster.enabled=false")
    assert result.returncode != 0
    assert "nats.streamReplicas (3) exceeds" in result.stderr


def test_alb_needs_a_certificate(helm: str, chart_dir: Path) -> None:
    result = render(helm, chart_dir, "ingress.alb.enabled=true")
    assert result.returncode != 0
    assert "certificateArn" in result.stderr


def test_class_alb_alone_makes_an_alb_ingress(helm: str, chart_dir: Path) -> None:
    """terraform's chart_values output sets ingress.className alb and the certificate."""
    certificate = "arn:aws:acm:eu-west-1:123456789012:certificate/abc"
    result = render(
        helm, chart_dir, "ingress.className=alb", f"ingress.alb.certificateArn={certificate}"
    )
    assert result.returncode == 0, result.stderr
    manifests = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    ingress = find(manifests, "Ingress", "rel-tessera")
    annotations = ingress["metadata"]["annotations"]
    assert annotations["alb.ingress.kubernetes.io/certificate-arn"] == certificate
    assert not [key for key in annotations if key.startswith("nginx.")]
    assert {path["pathType"] for path in ingress["spec"]["rules"][0]["http"]["paths"]} <= {
        "Exact",
        "Prefix",
    }


def test_migration_job_as_the_owner_with_hand_made_secrets(helm: str, chart_dir: Path) -> None:
    result = render(helm, chart_dir, "secrets.databaseOwner.existingSecret=tessera-db-owner")
    assert result.returncode == 0, result.stderr
    manifests = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    pod = find(manifests, "Job", "rel-tessera-migrate")["spec"]["template"]["spec"]
    for step in [*pod.get("initContainers", []), *pod["containers"]]:
        assert step["command"][:3] == ["tessera-migrate", "--app-role", "tessera_app"]
        env = {
            item["name"]: item["valueFrom"]["secretKeyRef"]
            for item in step["env"]
            if "valueFrom" in item
        }
        assert env == {
            "TESSERA_DATABASE_URL": {"name": "tessera-db-owner", "key": "url"},
            "TESSERA_APP_ROLE_PASSWORD": {"name": "tessera-db-owner", "key": "app-role-password"},
        }
    assert not [m for m in manifests if m["kind"] == "ExternalSecret"]
