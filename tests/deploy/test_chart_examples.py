"""helm/tessera with its example values: lint, render, schemas, policy, invariants.

Each example file (helm/tessera/examples/*.yaml, and eks.yaml with gpu-scale-to-zero.yaml
on top) is linted with `helm lint --strict` and rendered with `helm template` together
with the vendored NATS chart (charts/nats-*.tgz). Then:

- every manifest of a built-in Kubernetes kind validates against the Kubernetes JSON
  schemas of kubernetes-validate, strictly (no unknown field);
- the custom resources (KEDA's ScaledObject, ESO's ExternalSecret) are checked against
  the fields their operators require (small schemas below);
- checkov finds no failed check, and every check it skips is skipped by a
  `checkov.io/skip<N>: <check>=<reason>` annotation with a reason;
- invariants that a regression would break: no pod mounts a ServiceAccount token, every
  container has requests and limits and runs hardened, no HorizontalPodAutoscaler
  competes with a ScaledObject, the NetworkPolicies deny by default and allow exactly
  the fleet's flows, IRSA roles sit on the right ServiceAccounts, Triton runs as a
  non-root user behind a PodDisruptionBudget, and so on.

Only a missing `helm` skips the rendering tests (a missing checkov skips the checkov
test); the NATS chart is part of the repository.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "tessera"
EXAMPLES = CHART / "examples"
CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"
RELEASE = "rel"
NAMESPACE = "tessera"
PREFIX = f"{RELEASE}-tessera"
KUBERNETES_VERSION = "1.33"
SERVICES = ("annotations", "ingest", "export", "inference")
WORKLOADS = ("gateway", *SERVICES)
POD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job")
CUSTOM_GROUPS = ("keda.sh/", "external-secrets.io/")

# Every rendering the tests look at: a name and the values files, in order.
RENDERINGS: dict[str, tuple[str, ...]] = {
    "default": (),
    "dev": ("dev.yaml",),
    "eks": ("eks.yaml",),
    "gpu-scale-to-zero": ("gpu-scale-to-zero.yaml",),
    "eks+gpu-scale-to-zero": ("eks.yaml", "gpu-scale-to-zero.yaml"),
}
EXAMPLE_FILES = sorted(path.name for path in EXAMPLES.glob("*.yaml"))

Manifest = dict[str, Any]


def test_every_example_is_rendered() -> None:
    assert EXAMPLE_FILES == ["dev.yaml", "eks.yaml", "gpu-scale-to-zero.yaml"]
    used = {name for files in RENDERINGS.values() for name in files}
    assert used == set(EXAMPLE_FILES)


def test_the_nats_chart_is_vendored() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    (nats,) = chart["dependencies"]
    assert (CHART / "charts" / f"nats-{nats['version']}.tgz").is_file()


# -- rendering ------------------------------------------------------------------------


def helm_binary() -> str:
    """The helm binary, or a skip."""
    binary = shutil.which("helm")
    if binary is None:
        pytest.skip("helm is not on PATH; the chart is not rendered")
    return binary


def value_arguments(files: tuple[str, ...]) -> list[str]:
    """`-f` arguments for example files."""
    return [argument for name in files for argument in ("-f", str(EXAMPLES / name))]


@cache
def rendered_text(rendering: str) -> str:
    """`helm template` of one rendering (with the hooks, as `helm install` applies them)."""
    arguments = [helm_binary(), "template", RELEASE, str(CHART), "--namespace", NAMESPACE]
    result = subprocess.run(
        [*arguments, *value_arguments(RENDERINGS[rendering])],
        capture_output=True,
        text=True,
        check=False,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@cache
def rendered(rendering: str) -> tuple[Manifest, ...]:
    """The documents of one rendering, parsed."""
    return tuple(doc for doc in yaml.safe_load_all(rendered_text(rendering)) if doc)


def of_kind(manifests: tuple[Manifest, ...], kind: str) -> list[Manifest]:
    """The manifests of one kind."""
    return [m for m in manifests if m["kind"] == kind]


def find(manifests: tuple[Manifest, ...], kind: str, name: str) -> Manifest:
    """The one manifest of a kind and name."""
    (found,) = [m for m in of_kind(manifests, kind) if m["metadata"]["name"] == name]
    return found


def pod_templates(manifests: tuple[Manifest, ...]) -> Iterator[tuple[Manifest, Manifest]]:
    """(owner, pod template) of every workload."""
    for manifest in manifests:
        if manifest["kind"] in POD_KINDS:
            yield manifest, manifest["spec"]["template"]


def containers(pod: Manifest) -> list[Manifest]:
    """The init containers and containers of a pod template."""
    spec = pod["spec"]
    return [*spec.get("initContainers", []), *spec["containers"]]


def env_of(container: Manifest) -> dict[str, Manifest]:
    """A container's environment, by name."""
    return {item["name"]: item for item in container.get("env", [])}


def owner_name(manifest: Manifest) -> str:
    """`Kind/name` for messages."""
    return f"{manifest['kind']}/{manifest['metadata']['name']}"


@pytest.mark.parametrize("rendering", list(RENDERINGS))
def test_helm_lint_strict(rendering: str) -> None:
    arguments = [helm_binary(), "lint", "--strict", str(CHART)]
    result = subprocess.run(
        [*arguments, *value_arguments(RENDERINGS[rendering])],
        capture_output=True,
        text=True,
        check=False,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_helm_sees_the_dependency_as_built() -> None:
    result = subprocess.run(
        [helm_binary(), "dependency", "list", str(CHART)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    (line,) = [line for line in result.stdout.splitlines() if line.startswith("nats")]
    assert line.split()[-1] == "ok", result.stdout


# -- schemas --------------------------------------------------------------------------


@pytest.mark.parametrize("rendering", list(RENDERINGS))
def test_built_in_kinds_validate_strictly(rendering: str) -> None:
    errors = []
    for manifest in rendered(rendering):
        if manifest["apiVersion"].startswith(CUSTOM_GROUPS):
            continue
        try:
            kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            errors.append(f"{owner_name(manifest)}: {exc}")
    assert not errors, "\n".join(errors)


def test_the_strict_validation_catches_unknown_fields() -> None:
    (deployment, *_) = of_kind(rendered("default"), "Deployment")
    broken = json.loads(json.dumps(deployment))
    broken["spec"]["template"]["spec"]["containers"][0]["resource"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


_NAME = {"type": "string", "pattern": "^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"}
_METADATA = {
    "type": "object",
    "properties": {"name": _NAME, "namespace": _NAME},
    "required": ["name", "namespace"],
}
_STRINGS = {"type": "object", "additionalProperties": {"type": "string"}}
# What KEDA 2.x's ScaledObject CRD and its nats-jetstream and cpu scalers require.
SCALED_OBJECT = {
    "type": "object",
    "properties": {
        "apiVersion": {"const": "keda.sh/v1alpha1"},
        "metadata": _METADATA,
        "spec": {
            "type": "object",
            "properties": {
                "scaleTargetRef": {
                    "type": "object",
                    "properties": {
                        "apiVersion": {"const": "apps/v1"},
                        "kind": {"const": "Deployment"},
                        "name": _NAME,
                    },
                    "required": ["name"],
                    "additionalProperties": False,
                },
                "pollingInterval": {"type": "integer", "minimum": 1},
                "cooldownPeriod": {"type": "integer", "minimum": 0},
                "minReplicaCount": {"type": "integer", "minimum": 0},
                "maxReplicaCount": {"type": "integer", "minimum": 1},
                "advanced": {"type": "object"},
                "triggers": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "properties": {
                            "type": {"type": "string"},
                            "metadata": _STRINGS,
                            "metricType": {"enum": ["Utilization", "AverageValue", "Value"]},
                        },
                        "required": ["type", "metadata"],
                        "allOf": [
                            {
                                "if": {"properties": {"type": {"const": "nats-jetstream"}}},
                                "then": {
                                    "properties": {
                                        "metadata": {
                                            "required": [
                                                "natsServerMonitoringEndpoint",
                                                "account",
                                                "stream",
                                                "consumer",
                                                "lagThreshold",
                                            ],
                                            "properties": {
                                                "lagThreshold": {"pattern": "^[1-9][0-9]*$"},
                                                "natsServerMonitoringEndpoint": {
                                                    "pattern": "^[a-z0-9.-]+:8222$"
                                                },
                                            },
                                        }
                                    }
                                },
                            },
                            {
                                "if": {"properties": {"type": {"const": "cpu"}}},
                                "then": {
                                    "required": ["metricType"],
                                    "properties": {"metadata": {"required": ["value"]}},
                                },
                            },
                        ],
                    },
                },
            },
            "required": ["scaleTargetRef", "minReplicaCount", "maxReplicaCount", "triggers"],
            "additionalProperties": False,
        },
    },
    "required": ["apiVersion", "kind", "metadata", "spec"],
}
_REMOTE_REF = {
    "type": "object",
    "properties": {"key": {"type": "string", "minLength": 1}, "property": {"type": "string"}},
    "required": ["key"],
    "additionalProperties": False,
}
# What the External Secrets Operator's ExternalSecret (external-secrets.io/v1) requires.
EXTERNAL_SECRET = {
    "type": "object",
    "properties": {
        "apiVersion": {"const": "external-secrets.io/v1"},
        "metadata": _METADATA,
        "spec": {
            "type": "object",
            "properties": {
                "refreshInterval": {"type": "string", "pattern": "^([0-9]+(ns|us|ms|s|m|h))+$"},
                "secretStoreRef": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string", "minLength": 1},
                        "kind": {"enum": ["SecretStore", "ClusterSecretStore"]},
                    },
                    "required": ["name", "kind"],
                    "additionalProperties": False,
                },
                "target": {
                    "type": "object",
                    "properties": {
                        "name": _NAME,
                        "creationPolicy": {"enum": ["Owner", "Orphan", "Merge", "None"]},
                        "template": {
                            "type": "object",
                            "properties": {
                                "engineVersion": {"const": "v2"},
                                "type": {"type": "string"},
                                "data": _STRINGS,
                            },
                            "required": ["engineVersion", "data"],
                            "additionalProperties": False,
                        },
                    },
                    "required": ["name"],
                    "additionalProperties": False,
                },
                "data": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "properties": {
                            "secretKey": {"type": "string", "pattern": "^[-._a-zA-Z0-9]+$"},
                            "remoteRef": _REMOTE_REF,
                        },
                        "required": ["secretKey", "remoteRef"],
                        "additionalProperties": False,
                    },
                },
            },
            "required": ["secretStoreRef", "target", "data"],
            "additionalProperties": False,
        },
    },
    "required": ["apiVersion", "kind", "metadata", "spec"],
}
CUSTOM_SCHEMAS = {"ScaledObject": SCALED_OBJECT, "ExternalSecret": EXTERNAL_SECRET}


@pytest.mark.parametrize("rendering", list(RENDERINGS))
def test_custom_resources_have_what_their_operators_require(rendering: str) -> None:
    errors = []
    for manifest in rendered(rendering):
        if not manifest["apiVersion"].startswith(CUSTOM_GROUPS):
            continue
        assert manifest["kind"] in CUSTOM_SCHEMAS, owner_name(manifest)
        validator = jsonschema.Draft7Validator(CUSTOM_SCHEMAS[manifest["kind"]])
        errors += [f"{owner_name(manifest)}: {e.message}" for e in validator.iter_errors(manifest)]
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize(
    "breakage",
    [
        lambda so: so["spec"]["triggers"][0]["metadata"].pop("consumer"),
        lambda so: so["spec"]["triggers"][0]["metadata"].update(lagThreshold="0"),
        lambda so: so["spec"].update(minReplicas=1),
        lambda so: so.update(apiVersion="keda.k8s.io/v1alpha1"),
    ],
)
def test_the_custom_schemas_catch_mistakes(breakage: Any) -> None:
    scaled = json.loads(json.dumps(of_kind(rendered("eks"), "ScaledObject")[0]))
    breakage(scaled)
    assert list(jsonschema.Draft7Validator(SCALED_OBJECT).iter_errors(scaled))


# -- checkov --------------------------------------------------------------------------


SKIP_ANNOTATION = re.compile(r"^checkov\.io/skip[0-9]+$")


@cache
def checkov_report(rendering: str, directory: Path) -> dict[str, Any]:
    """checkov's JSON report of one rendering (written to a file, as the issue asks)."""
    target = directory / f"{rendering}.yaml"
    target.write_text(rendered_text(rendering))
    command = [str(CHECKOV), "-f", str(target), "--framework", "kubernetes", "--compact"]
    # --skip-download: no Prisma Cloud look-up (there is no network; the checks are local).
    result = subprocess.run(
        [*command, "-o", "json", "--skip-download"],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.stdout.strip(), result.stderr[-3000:]
    report = json.loads(result.stdout)
    return report[0] if isinstance(report, list) else report  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def checkov_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the rendered files for checkov go; a skip without checkov."""
    if not CHECKOV.is_file():
        pytest.skip("checkov is not installed (make install puts it in .venv-checkov)")
    return tmp_path_factory.mktemp("checkov")


@pytest.mark.parametrize("rendering", list(RENDERINGS))
def test_checkov_finds_nothing_and_every_skip_has_a_reason(
    rendering: str, checkov_dir: Path
) -> None:
    report = checkov_report(rendering, checkov_dir)
    failed = report["results"]["failed_checks"]
    assert not failed, [f"{c['check_id']} {c['resource']}: {c['check_name']}" for c in failed]
    assert report["summary"]["passed"] > 0
    for check in report["results"]["skipped_checks"]:
        comment = check["check_result"].get("suppress_comment", "")
        assert len(comment) >= 20, f"{check['check_id']} on {check['resource']} has no reason"
    # Every skip annotation names one check, with a reason that checkov can split off.
    for manifest in rendered(rendering):
        for key, value in (manifest["metadata"].get("annotations") or {}).items():
            if SKIP_ANNOTATION.match(key):
                check, _, reason = value.partition("=")
                assert re.fullmatch(r"CKV2?_K8S_[0-9]+", check), value
                assert "=" not in reason, f"{key}: checkov splits on every '='"
                assert len(reason) >= 20, value


def test_counts_of_checkov_skips_stay_known(checkov_dir: Path) -> None:
    """A new skip is a decision: it must show up here, with its reason in a template."""
    skipped = checkov_report("eks", checkov_dir)["results"]["skipped_checks"]
    by_check: dict[str, int] = {}
    for check in skipped:
        by_check[check["check_id"]] = by_check.get(check["check_id"], 0) + 1
    assert by_check == {
        # Image digests and pull policies: every workload (7 Deployments/Job/DaemonSet
        # of the chart, NATS).
        "CKV_K8S_43": 9,
        "CKV_K8S_15": 9,
        # Secrets as environment variables: the four services, the Job, NATS.
        "CKV_K8S_35": 6,
        # Triton's uid 1000, and the device plugin as root.
        "CKV_K8S_40": 2,
        "CKV_K8S_23": 1,
        "CKV_K8S_22": 1,
        # No health endpoint: the device plugin, NATS's config reloader.
        "CKV_K8S_8": 2,
        "CKV_K8S_9": 2,
    }


# -- invariants -----------------------------------------------------------------------


@pytest.mark.parametrize("rendering", list(RENDERINGS))
def test_no_pod_mounts_a_service_account_token(rendering: str) -> None:
    manifests = rendered(rendering)
    for owner, pod in pod_templates(manifests):
        assert pod["spec"].get("automountServiceAccountToken") is False, owner_name(owner)
    for account in of_kind(manifests, "ServiceAccount"):
        assert account.get("automountServiceAccountToken") is False, owner_name(account)


@pytest.mark.parametrize("rendering", list(RENDERINGS))
def test_every_container_has_requests_and_limits(rendering: str) -> None:
    for owner, pod in pod_templates(rendered(rendering)):
        for container in containers(pod):
            resources = container.get("resources") or {}
            for kind in ("requests", "limits"):
                given = set(resources.get(kind) or {})
                assert {"cpu", "memory"} <= given, f"{owner_name(owner)} {container['name']}"


@pytest.mark.parametrize("rendering", list(RENDERINGS))
def test_every_container_runs_hardened(rendering: str) -> None:
    for owner, pod in pod_templates(rendered(rendering)):
        name = owner_name(owner)
        pod_context = pod["spec"].get("securityContext") or {}
        assert pod_context.get("seccompProfile") == {"type": "RuntimeDefault"}, name
        for container in containers(pod):
            context = container.get("securityContext") or {}
            assert context.get("allowPrivilegeEscalation") is False, name
            assert context.get("capabilities", {}).get("drop") == ["ALL"], name
            assert not context.get("privileged"), name
            if owner["metadata"]["name"].endswith("-nvidia-device-plugin"):
                continue  # root for the kubelet's socket directory: see its checkov skips
            assert context.get("readOnlyRootFilesystem") is True, name
            assert context.get("runAsNonRoot", pod_context.get("runAsNonRoot")) is True, name
            user = context.get("runAsUser", pod_context.get("runAsUser"))
            assert isinstance(user, int), name
            assert user > 0, name


@pytest.mark.parametrize("rendering", list(RENDERINGS))
def test_no_autoscaler_competes_with_a_scaled_object(rendering: str) -> None:
    manifests = rendered(rendering)
    hpa_targets = {
        m["spec"]["scaleTargetRef"]["name"] for m in of_kind(manifests, "HorizontalPodAutoscaler")
    }
    keda_targets = {m["spec"]["scaleTargetRef"]["name"] for m in of_kind(manifests, "ScaledObject")}
    assert not hpa_targets & keda_targets
    for deployment in of_kind(manifests, "Deployment"):
        if deployment["metadata"]["name"] in hpa_targets | keda_targets:
            # A fixed replica count would undo the autoscaler's at every upgrade.
            assert "replicas" not in deployment["spec"], owner_name(deployment)
    for target in hpa_targets | keda_targets:
        find(manifests, "Deployment", target)


def test_which_workload_scales_how() -> None:
    def scaling(rendering: str) -> tuple[set[str], set[str]]:
        manifests = rendered(rendering)
        hpas = {m["metadata"]["name"] for m in of_kind(manifests, "HorizontalPodAutoscaler")}
        scaled = {m["metadata"]["name"] for m in of_kind(manifests, "ScaledObject")}
        return hpas, scaled

    everyone = {f"{PREFIX}-{name}" for name in WORKLOADS}
    assert scaling("default") == (everyone, set())
    assert scaling("dev") == (set(), set())
    queues = {f"{PREFIX}-{name}" for name in ("export", "inference", "triton")}
    for rendering in ("eks", "gpu-scale-to-zero", "eks+gpu-scale-to-zero"):
        assert scaling(rendering) == (
            {f"{PREFIX}-{name}" for name in ("gateway", "annotations", "ingest")},
            queues,
        )


def triggers(scaled: Manifest, kind: str) -> list[Manifest]:
    """The triggers of one type of a ScaledObject."""
    return [t for t in scaled["spec"]["triggers"] if t["type"] == kind]


@pytest.mark.parametrize("rendering", ["eks", "gpu-scale-to-zero", "eks+gpu-scale-to-zero"])
def test_keda_scales_on_the_work_queues(rendering: str) -> None:
    manifests = rendered(rendering)
    headless = find(manifests, "Service", f"{RELEASE}-nats-headless")
    assert headless["spec"]["clusterIP"] == "None"
    assert {"name": "monitor", "port": 8222} in [
        {"name": p["name"], "port": p["port"]} for p in headless["spec"]["ports"]
    ]
    endpoint = f"{RELEASE}-nats-headless.{NAMESPACE}.svc.cluster.local:8222"

    def queues(name: str) -> set[tuple[str, str]]:
        scaled = find(manifests, "ScaledObject", f"{PREFIX}-{name}")
        assert scaled["spec"]["scaleTargetRef"]["name"] == f"{PREFIX}-{name}"
        found = set()
        for trigger in triggers(scaled, "nats-jetstream"):
            metadata = trigger["metadata"]
            assert metadata["natsServerMonitoringEndpoint"] == endpoint
            assert metadata["account"] == "$G"
            found.add((metadata["stream"], metadata["consumer"]))
        return found

    assert queues("export") == {
        ("EXPORT", consumer)
        for consumer in (
            "export-dataset",
            "import-annotations",
            "restore-backups",
            "import-datasets",
        )
    }
    assert queues("inference") == {("INFERENCE", "inference-annotate")}
    assert queues("triton") == {("INFERENCE", "inference-annotate")}
    # The pods that serve the API keep a CPU trigger; Triton only follows the queue.
    for name in ("export", "inference"):
        (cpu,) = triggers(find(manifests, "ScaledObject", f"{PREFIX}-{name}"), "cpu")
        assert cpu["metricType"] == "Utilization"
    assert not triggers(find(manifests, "ScaledObject", f"{PREFIX}-triton"), "cpu")


def test_triton_scales_to_zero_only_when_asked() -> None:
    for rendering, minimum in (("eks", 2), ("gpu-scale-to-zero", 0), ("eks+gpu-scale-to-zero", 0)):
        manifests = rendered(rendering)
        triton = find(manifests, "ScaledObject", f"{PREFIX}-triton")
        assert triton["spec"]["minReplicaCount"] == minimum, rendering
        inference = find(manifests, "Deployment", f"{PREFIX}-inference")
        (container,) = inference["spec"]["template"]["spec"]["containers"]
        # Inference's /readyz asks Triton: while Triton may sleep it must not gate the API.
        expected = "/healthz" if minimum == 0 else "/readyz"
        assert container["readinessProbe"]["httpGet"]["path"] == expected, rendering
        # An auto-annotation request must outlast Triton's cold start (minutes), not fail
        # after the default 3 attempts 5 s apart.
        env = env_of(container)
        if minimum == 0:
            attempts = int(env["TESSERA_AUTO_ANNOTATION_MAX_DELIVERIES"]["value"])
            delay = float(env["TESSERA_AUTO_ANNOTATION_RETRY_DELAY_S"]["value"])
            assert attempts * delay >= 10 * 60, rendering
        else:
            assert "TESSERA_AUTO_ANNOTATION_MAX_DELIVERIES" not in env, rendering
    # Without KEDA: two GPUs by default, one in the dev example.
    assert find(rendered("default"), "Deployment", f"{PREFIX}-triton")["spec"]["replicas"] == 2
    assert find(rendered("dev"), "Deployment", f"{PREFIX}-triton")["spec"]["replicas"] == 1


@pytest.mark.parametrize("rendering", list(RENDERINGS))
def test_triton_runs_as_its_own_user_behind_a_disruption_budget(rendering: str) -> None:
    manifests = rendered(rendering)
    triton = find(manifests, "Deployment", f"{PREFIX}-triton")
    spec = triton["spec"]["template"]["spec"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] == 1000
    assert spec["serviceAccountName"] == f"{PREFIX}-triton"
    mounts = {m["mountPath"] for m in spec["containers"][0]["volumeMounts"]}
    assert {"/tmp", "/dev/shm"} <= mounts
    budgets = {m["metadata"]["name"]: m for m in of_kind(manifests, "PodDisruptionBudget")}
    if rendering == "dev":
        assert not budgets.keys() - {f"{RELEASE}-nats"}
        return
    budget = budgets[f"{PREFIX}-triton"]
    assert budget["spec"]["selector"]["matchLabels"].items() <= (
        triton["spec"]["template"]["metadata"]["labels"].items()
    )
    for name in ("gateway", "annotations"):
        assert f"{PREFIX}-{name}" in budgets


@pytest.mark.parametrize("rendering", list(RENDERINGS))
def test_each_workload_has_its_own_service_account(rendering: str) -> None:
    manifests = rendered(rendering)
    accounts = {m["metadata"]["name"] for m in of_kind(manifests, "ServiceAccount")}
    assert accounts == {f"{PREFIX}-{name}" for name in (*WORKLOADS, "triton")}
    for name in (*WORKLOADS, "triton"):
        deployment = find(manifests, "Deployment", f"{PREFIX}-{name}")
        assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == f"{PREFIX}-{name}"


def test_irsa_roles_land_on_their_service_accounts() -> None:
    manifests = rendered("eks")
    examples = yaml.safe_load((EXAMPLES / "eks.yaml").read_text())["serviceAccounts"]
    for name in (*WORKLOADS, "triton"):
        account = find(manifests, "ServiceAccount", f"{PREFIX}-{name}")
        annotations = account["metadata"].get("annotations") or {}
        if name in ("ingest", "export", "triton"):
            assert annotations["eks.amazonaws.com/role-arn"] == examples[name]["roleArn"]
            assert annotations["eks.amazonaws.com/role-arn"].endswith(f"/tessera-{name}")
        else:
            assert "eks.amazonaws.com/role-arn" not in annotations, name


@pytest.mark.parametrize("rendering", list(RENDERINGS))
def test_ingest_and_export_scratch_on_generic_ephemeral_volumes(rendering: str) -> None:
    manifests = rendered(rendering)
    for name in ("ingest", "export"):
        pod = find(manifests, "Deployment", f"{PREFIX}-{name}")["spec"]["template"]["spec"]
        volumes = {volume["name"]: volume for volume in pod["volumes"]}
        claim = volumes["scratch"]["ephemeral"]["volumeClaimTemplate"]["spec"]
        assert claim["storageClassName"] == "tessera-gp3"
        assert claim["resources"]["requests"]["storage"]
        assert "emptyDir" not in volumes["scratch"]
        assert env_of(pod["containers"][0])["TMPDIR"]["value"] == "/scratch"
    find(manifests, "StorageClass", "tessera-gp3")


@pytest.mark.parametrize(("rendering", "replicas"), [("default", 1), ("dev", 1), ("eks", 3)])
def test_stream_replicas_follow_the_nats_cluster(rendering: str, replicas: int) -> None:
    manifests = rendered(rendering)
    for name in SERVICES:
        pod = find(manifests, "Deployment", f"{PREFIX}-{name}")["spec"]["template"]["spec"]
        value = env_of(pod["containers"][0])["TESSERA_NATS_STREAM_REPLICAS"]["value"]
        assert value == str(replicas), name
    servers = find(manifests, "StatefulSet", f"{RELEASE}-nats")["spec"]
    assert servers["replicas"] >= replicas
    if rendering == "eks":
        assert servers["replicas"] == 3
        (claim,) = servers["volumeClaimTemplates"]
        assert claim["spec"]["storageClassName"] == "tessera-gp3"


# -- database credentials ---------------------------------------------------------------


def migration_steps(manifests: tuple[Manifest, ...]) -> list[Manifest]:
    """The migration Job's steps, in order."""
    job = find(manifests, "Job", f"{PREFIX}-migrate")
    return containers(job["spec"]["template"])


def test_external_secrets_feed_the_services_and_the_migration_job() -> None:
    manifests = rendered("eks")
    secrets = {m["metadata"]["name"]: m for m in of_kind(manifests, "ExternalSecret")}
    app = secrets[f"{PREFIX}-database"]
    owner = secrets[f"{PREFIX}-database-owner"]
    assert app["spec"]["target"]["name"] == "tessera-database"
    assert "helm.sh/hook" not in (app["metadata"].get("annotations") or {})
    for secret in (app, owner):
        assert secret["spec"]["secretStoreRef"] == {
            "kind": "ClusterSecretStore",
            "name": "tessera-aws-secrets-manager",
        }
        for url in [
            v for k, v in secret["spec"]["target"]["template"]["data"].items() if k == "url"
        ]:
            assert url.startswith("postgresql+asyncpg://{{ ")
            assert "| urlquery }}@" in url
            assert url.endswith("?ssl=require")
    # The owner's Secret exists before the Job: a hook with a lower weight.
    job = find(manifests, "Job", f"{PREFIX}-migrate")
    owner_hook = owner["metadata"]["annotations"]
    assert owner_hook["helm.sh/hook"] == job["metadata"]["annotations"]["helm.sh/hook"]
    assert int(owner_hook["helm.sh/hook-weight"]) < int(
        job["metadata"]["annotations"]["helm.sh/hook-weight"]
    )
    assert "hook-succeeded" not in owner_hook["helm.sh/hook-delete-policy"]
    properties = {
        (d["remoteRef"]["key"], d["remoteRef"]["property"]) for d in owner["spec"]["data"]
    }
    examples = yaml.safe_load((EXAMPLES / "eks.yaml").read_text())["database"]["externalSecrets"]
    assert (examples["ownerSecret"], "password") in properties
    assert (examples["appSecret"], "password") in properties
    for step in migration_steps(manifests):
        assert step["command"][:3] == ["tessera-migrate", "--app-role", "tessera_app"]
        env = env_of(step)
        for variable, key in (
            ("TESSERA_DATABASE_URL", "url"),
            ("TESSERA_APP_ROLE_PASSWORD", "app-role-password"),
        ):
            reference = env[variable]["valueFrom"]["secretKeyRef"]
            assert reference == {"name": owner["spec"]["target"]["name"], "key": key}
            assert key in owner["spec"]["target"]["template"]["data"]
    # The services keep reading the application's URL.
    for name in SERVICES:
        pod = find(manifests, "Deployment", f"{PREFIX}-{name}")["spec"]["template"]["spec"]
        reference = env_of(pod["containers"][0])["TESSERA_DATABASE_URL"]["valueFrom"][
            "secretKeyRef"
        ]
        assert reference == {"name": "tessera-database", "key": "url"}


def test_without_external_secrets_the_job_runs_as_the_application() -> None:
    manifests = rendered("dev")
    assert not of_kind(manifests, "ExternalSecret")
    for step in migration_steps(manifests):
        assert "--app-role" not in step["command"]
        assert set(env_of(step)) >= {"TESSERA_DATABASE_URL"}
        assert "TESSERA_APP_ROLE_PASSWORD" not in env_of(step)


# -- ingress --------------------------------------------------------------------------


def test_the_alb_ingress_follows_the_routing_table() -> None:
    ingress = find(rendered("eks"), "Ingress", PREFIX)
    annotations = ingress["metadata"]["annotations"]
    assert ingress["spec"]["ingressClassName"] == "alb"
    assert annotations["alb.ingress.kubernetes.io/target-type"] == "ip"
    assert json.loads(annotations["alb.ingress.kubernetes.io/listen-ports"]) == [
        {"HTTP": 80},
        {"HTTPS": 443},
    ]
    assert annotations["alb.ingress.kubernetes.io/ssl-redirect"] == "443"
    assert annotations["alb.ingress.kubernetes.io/healthcheck-path"] == "/healthz"
    assert annotations["alb.ingress.kubernetes.io/certificate-arn"].startswith("arn:aws:acm:")
    assert annotations["alb.ingress.kubernetes.io/group.name"] == "tessera"
    assert not [key for key in annotations if key.startswith("nginx.")]
    assert "tls" not in ingress["spec"]
    (rule,) = ingress["spec"]["rules"]
    rendered_paths = [
        (p["path"], p["pathType"], p["backend"]["service"]["name"]) for p in rule["http"]["paths"]
    ]
    routes = json.loads((CHART / "files" / "routes.json").read_text())
    assert rendered_paths == [
        (e["path"], e["pathType"], f"{PREFIX}-{e['service']}") for e in routes["standard"]
    ]
    assert {kind for _, kind, _ in rendered_paths} <= {"Exact", "Prefix"}


def test_other_ingress_classes_get_standard_paths_and_tls() -> None:
    ingress = find(rendered("dev"), "Ingress", PREFIX)
    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert "nginx.ingress.kubernetes.io/use-regex" not in ingress["metadata"]["annotations"]
    assert ingress["spec"]["tls"] == [
        {"hosts": ["tessera.dev.example.com"], "secretName": "tessera-dev-tls"}
    ]
    (rule,) = ingress["spec"]["rules"]
    assert {p["pathType"] for p in rule["http"]["paths"]} <= {"Exact", "Prefix"}


# -- network policies -------------------------------------------------------------------


def labels_of(manifests: tuple[Manifest, ...], name: str) -> dict[str, str]:
    """The pod labels of a workload (Deployment, StatefulSet, DaemonSet or Job)."""
    for owner, pod in pod_templates(manifests):
        if owner["metadata"]["name"] == name:
            return dict(pod["metadata"]["labels"])
    raise KeyError(name)


def selects(selector: Manifest, labels: dict[str, str]) -> bool:
    """Whether a podSelector (matchLabels only, as the chart writes them) picks labels."""
    assert set(selector) <= {"matchLabels"}, selector
    return (selector.get("matchLabels") or {}).items() <= labels.items()


def allows(rules: list[Manifest], side: str, peer: dict[str, str], port: int) -> bool:
    """Whether one direction's rules let a pod of this namespace (labels `peer`) through."""
    for rule in rules:
        ports = [p["port"] for p in rule.get("ports", [])]
        if ports and port not in ports:
            continue
        for entry in rule.get(side, []):
            same_namespace = "podSelector" in entry and "namespaceSelector" not in entry
            if same_namespace and selects(entry["podSelector"], peer):
                return True
    return False


def may_connect(
    manifests: tuple[Manifest, ...], source: dict[str, str], target: dict[str, str], port: int
) -> bool:
    """Pod-to-pod in the release's namespace: egress at the source and ingress at the target."""
    policies = of_kind(manifests, "NetworkPolicy")

    def permitted(pod: dict[str, str], kind: str, side: str, peer: dict[str, str]) -> bool:
        applying = [
            p
            for p in policies
            if kind in p["spec"]["policyTypes"] and selects(p["spec"]["podSelector"], pod)
        ]
        if not applying:
            return True
        return any(allows(p["spec"].get(kind.lower(), []), side, peer, port) for p in applying)

    return permitted(source, "Egress", "to", target) and permitted(
        target, "Ingress", "from", source
    )


@pytest.mark.parametrize("rendering", list(RENDERINGS))
def test_network_policies_deny_by_default(rendering: str) -> None:
    manifests = rendered(rendering)
    policies = of_kind(manifests, "NetworkPolicy")
    (deny,) = [p for p in policies if p["metadata"]["name"] == f"{PREFIX}-default-deny"]
    assert deny["spec"] == {
        "podSelector": {"matchLabels": {"app.kubernetes.io/instance": RELEASE}},
        "policyTypes": ["Ingress", "Egress"],
    }
    for owner, pod in pod_templates(manifests):
        assert selects(deny["spec"]["podSelector"], pod["metadata"]["labels"]), owner_name(owner)


FLOWS_ALLOWED = [
    ("gateway", "annotations", 8000),
    ("gateway", "ingest", 8000),
    ("gateway", "export", 8000),
    ("gateway", "inference", 8000),
    ("ingest", "annotations", 8000),
    ("export", "annotations", 8000),
    ("export", "ingest", 8000),
    ("inference", "annotations", 8000),
    ("inference", "ingest", 8000),
    ("inference", "triton", 8001),
    ("inference", "triton", 8000),
    ("annotations", "nats", 4222),
    ("ingest", "nats", 4222),
    ("export", "nats", 4222),
    ("inference", "nats", 4222),
    ("nats", "nats", 6222),
]
FLOWS_DENIED = [
    ("gateway", "nats", 4222),
    ("gateway", "triton", 8001),
    ("annotations", "ingest", 8000),
    ("annotations", "export", 8000),
    ("ingest", "export", 8000),
    ("export", "inference", 8000),
    ("export", "triton", 8001),
    ("triton", "annotations", 8000),
    ("nats", "annotations", 8000),
    ("annotations", "nats", 8222),
    ("annotations", "nats", 6222),
    ("nvidia-device-plugin", "annotations", 8000),
    ("migrate", "nats", 4222),
]


def workload_name(component: str) -> str:
    """The rendered name of a component's workload."""
    return f"{RELEASE}-nats" if component == "nats" else f"{PREFIX}-{component}"


@pytest.mark.parametrize("rendering", ["default", "eks"])
def test_network_policies_allow_the_fleets_flows_and_nothing_else(rendering: str) -> None:
    manifests = rendered(rendering)
    for source, target, port in FLOWS_ALLOWED + FLOWS_DENIED:
        expected = (source, target, port) in FLOWS_ALLOWED
        allowed = may_connect(
            manifests,
            labels_of(manifests, workload_name(source)),
            labels_of(manifests, workload_name(target)),
            port,
        )
        assert allowed == expected, f"{source} -> {target}:{port}"


@pytest.mark.parametrize("rendering", ["default", "eks"])
def test_network_policies_open_the_outside_flows(rendering: str) -> None:
    manifests = rendered(rendering)
    values = yaml.safe_load((CHART / "values.yaml").read_text())["networkPolicy"]
    policies = {p["metadata"]["name"]: p["spec"] for p in of_kind(manifests, "NetworkPolicy")}

    def egress_cidrs(name: str, port: int) -> set[str]:
        return {
            entry["ipBlock"]["cidr"]
            for rule in policies[f"{PREFIX}-{name}"].get("egress", [])
            if port in [p["port"] for p in rule.get("ports", [])]
            for entry in rule["to"]
            if "ipBlock" in entry
        }

    for name in (*SERVICES, "migrate"):
        assert egress_cidrs(name, 5432) == set(values["databaseCIDRs"]), name
    for name in ("ingest", "export", "triton"):
        assert set(values["s3CIDRs"]) <= egress_cidrs(name, 443), name
    for name in ("annotations", "inference", "gateway"):
        assert not egress_cidrs(name, 443), name
    assert "0.0.0.0/0" in egress_cidrs("ingest", 80)
    assert not egress_cidrs("gateway", 5432)
    # The Ingress's sources reach the gateway; KEDA reaches the NATS monitoring port.
    gateway_sources = [
        entry for rule in policies[f"{PREFIX}-gateway"]["ingress"] for entry in rule["from"]
    ]
    assert {"ipBlock": {"cidr": "10.0.0.0/16"}} in gateway_sources
    nats_ingress = policies[f"{PREFIX}-nats"]["ingress"]
    monitoring = [
        rule for rule in nats_ingress if rule["ports"] == [{"protocol": "TCP", "port": 8222}]
    ]
    keda = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "keda"}}}
    assert (keda in monitoring[0]["from"]) == (rendering == "eks")
    dns = policies[f"{PREFIX}-dns"]
    assert dns["podSelector"] == {"matchLabels": {"app.kubernetes.io/instance": RELEASE}}
    assert {p["port"] for p in dns["egress"][0]["ports"]} == {53}
