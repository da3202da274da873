"""terraform/: parses, says what the design asks for, and passes checkov.

`terraform validate` needs the providers, which cannot be downloaded here; these tests
read the HCL with python-hcl2 instead (node pools, IAM, database secrets, controllers,
bucket), the IRSA roles through the local module modules/irsa_role (its trust document,
and each call's ServiceAccount and policy), run checkov over the directory (skipped
where .venv-checkov is missing), and run `terraform fmt -check` when the binary is on
PATH.
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

import hcl2
import pytest
import yaml
from hcl2 import SerializationOptions

ROOT = Path(__file__).resolve().parents[2]
TERRAFORM = ROOT / "terraform"
VALUES = ROOT / "helm" / "tessera" / "values.yaml"
CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"
IRSA_MODULE = TERRAFORM / "modules" / "irsa_role"
IRSA_SOURCE = "./modules/irsa_role"

OPTIONS = SerializationOptions(strip_string_quotes=True, explicit_blocks=False, with_comments=False)

BUCKET = "${aws_s3_bucket.data.arn}"
SERVICES_WITH_S3 = {"ingest", "export", "triton"}
SERVICES_WITHOUT_S3 = {"annotations", "gateway", "inference"}
SKIP = re.compile(r"#\s*checkov:skip=(CKV2?_[A-Z0-9]+_\d+):(.*)")


def parse_directory(directory: Path) -> dict[str, dict[str, Any]]:
    """Every .tf file of one directory (not its subdirectories), parsed, by file name."""
    return {
        path.name: hcl2.loads(path.read_text(), serialization_options=OPTIONS)
        for path in sorted(directory.glob("*.tf"))
    }


@cache
def parsed() -> dict[str, dict[str, Any]]:
    """Every .tf file of the root configuration terraform/, parsed, by file name."""
    return parse_directory(TERRAFORM)


@cache
def parsed_irsa_module() -> dict[str, dict[str, Any]]:
    """Every .tf file of terraform/modules/irsa_role, parsed, by file name."""
    return parse_directory(IRSA_MODULE)


def blocks(kind: str, files: dict[str, dict[str, Any]] | None = None) -> Iterator[tuple[str, Any]]:
    """(label, body) of every top-level block of a kind (`module`, `variable`, ...), in the
    root configuration unless other parsed files are given."""
    for document in (parsed() if files is None else files).values():
        for entry in document.get(kind, []):
            yield from entry.items()


def typed(
    kind: str, type_name: str, files: dict[str, dict[str, Any]] | None = None
) -> dict[str, Any]:
    """The resources (or data sources) of one type, by name."""
    return {
        name: body
        for block_type, named in blocks(kind, files)
        if block_type == type_name
        for name, body in named.items()
    }


def module(name: str) -> dict[str, Any]:
    """The arguments of one module block."""
    found = dict(blocks("module"))
    return found[name]  # type: ignore[no-any-return]


def local(name: str) -> Any:
    """One value of the locals blocks."""
    found = {
        key: value
        for document in parsed().values()
        for entry in document.get("locals", [])
        for key, value in entry.items()
    }
    return found[name]


def variable_default(name: str) -> Any:
    return dict(blocks("variable"))[name].get("default")


def irsa_roles() -> dict[str, dict[str, Any]]:
    """The root configuration's calls of modules/irsa_role, by module name."""
    return {name: body for name, body in blocks("module") if body["source"] == IRSA_SOURCE}


def policy_documents() -> Iterator[tuple[str, dict[str, Any]]]:
    """(name, body) of every aws_iam_policy_document, the root's and the IRSA module's."""
    yield from typed("data", "aws_iam_policy_document").items()
    for name, body in typed("data", "aws_iam_policy_document", parsed_irsa_module()).items():
        yield f"modules/irsa_role:{name}", body


def policy(name: str) -> list[dict[str, Any]]:
    """The statements of an aws_iam_policy_document, dynamic ones included (their content)."""
    document = dict(policy_documents())[name]
    statements: list[dict[str, Any]] = list(document.get("statement", []))
    for dynamic in document.get("dynamic", []):
        statements.extend(dynamic["statement"]["content"])
    return statements


def by_sid(name: str) -> dict[str, dict[str, Any]]:
    return {statement["sid"]: statement for statement in policy(name)}


def conditions(statement: dict[str, Any]) -> dict[str, tuple[str, Any]]:
    return {c["variable"]: (c["test"], c["values"]) for c in statement.get("condition", [])}


def actions_of(name: str) -> set[str]:
    return {action for statement in policy(name) for action in statement["actions"]}


# -- structure --------------------------------------------------------------------------


def test_every_file_parses() -> None:
    files = parsed()
    assert set(files) >= {
        "versions.tf",
        "variables.tf",
        "outputs.tf",
        "main.tf",
        "eks.tf",
        "karpenter.tf",
        "autoscaling.tf",
        "s3.tf",
        "iam.tf",
        "rds.tf",
        "secrets.tf",
        "ingress.tf",
        "ecr.tf",
        "moved.tf",
    }
    assert all(files.values())
    module_files = parsed_irsa_module()
    assert set(module_files) == {"main.tf", "variables.tf", "outputs.tf", "versions.tf"}
    assert all(module_files.values())


def test_providers_and_terraform_are_pinned() -> None:
    (terraform,) = parsed()["versions.tf"]["terraform"]
    assert terraform["required_version"].startswith(">=")
    (providers,) = terraform["required_providers"]
    assert {name: provider["source"] for name, provider in providers.items()} == {
        "aws": "hashicorp/aws",
        "tls": "hashicorp/tls",
        "time": "hashicorp/time",
        "helm": "hashicorp/helm",
        "kubectl": "alekc/kubectl",
        "random": "hashicorp/random",
    }
    for provider in providers.values():
        assert provider["version"].startswith("~>")
    configured = {name for name, _ in blocks("provider")}
    assert configured == {"aws", "helm", "kubectl"}


def test_public_modules_at_their_current_majors() -> None:
    eks, vpc, karpenter = module("eks"), module("vpc"), module("karpenter")
    assert (eks["source"], eks["version"]) == ("terraform-aws-modules/eks/aws", "~> 21.0")
    assert (vpc["source"], vpc["version"]) == ("terraform-aws-modules/vpc/aws", "~> 6.0")
    assert (karpenter["source"], karpenter["version"]) == (
        "terraform-aws-modules/eks/aws//modules/karpenter",
        "~> 21.0",
    )
    assert eks["enable_irsa"] is True
    assert eks["subnet_ids"] == "${module.vpc.private_subnets}"
    assert {"aws-ebs-csi-driver", "eks-pod-identity-agent"} <= set(eks["addons"])


def test_the_vpc_cni_enforces_the_charts_network_policies() -> None:
    vpc_cni = module("eks")["addons"]["vpc-cni"]
    assert "enableNetworkPolicy" in vpc_cni["configuration_values"]
    assert '"true"' in vpc_cni["configuration_values"]


# -- nodes --------------------------------------------------------------------------------


def test_only_a_small_system_node_group_is_fixed() -> None:
    groups = module("eks")["eks_managed_node_groups"]
    assert set(groups) == {"system"}, "api, media and gpu nodes are Karpenter's"
    system = groups["system"]
    assert system["labels"] == {"tessera.io/node-pool": "system"}
    assert system["instance_types"] == ["${var.system_node_group.instance_type}"]
    assert "taints" not in system
    default = variable_default("system_node_group")
    assert 2 <= default["min_size"] <= default["desired_size"] <= default["max_size"] <= 3


def test_karpenter_node_pools_match_the_workloads() -> None:
    pools = local("karpenter_node_pools")
    assert {name: pool["instance_types"] for name, pool in pools.items()} == {
        "api": ["c5.xlarge"],
        "media": ["c5.2xlarge"],
        "gpu": ["g4dn.xlarge"],
    }
    assert pools["gpu"]["taints"] == [
        {"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}
    ]
    assert pools["api"]["taints"] == pools["media"]["taints"] == []
    # Karpenter has no minimum: the pools' caps are limits, the GPU pool's in GPUs too.
    for name, pool in pools.items():
        assert {"cpu", "memory"} <= set(pool["limits"]), name
        assert "min_size" not in pool
        assert f'var.node_pool_max_nodes["{name}"]' in pool["limits"]["cpu"]
    assert pools["gpu"]["limits"]["nvidia.com/gpu"] == '${var.node_pool_max_nodes["gpu"]}'
    assert variable_default("node_pool_max_nodes") == {"api": 8, "media": 10, "gpu": 4}


def test_node_pool_and_node_class_manifests() -> None:
    manifests = typed("resource", "kubectl_manifest")
    node_pool, node_class = manifests["karpenter_node_pool"], manifests["karpenter_node_class"]
    assert node_pool["for_each"] == node_class["for_each"] == "${local.karpenter_node_pools}"
    pool_body = node_pool["yaml_body"]
    for fragment in (
        'apiVersion = "karpenter.sh/v1"',
        'kind = "NodePool"',
        '"tessera.io/node-pool" = each.key',
        'key = "node.kubernetes.io/instance-type", operator = "In", '
        "values = each.value.instance_types",
        "taints = each.value.taints",
        "limits = each.value.limits",
        'kind = "EC2NodeClass"',
    ):
        assert fragment in pool_body, fragment
    # No static capacity: a pool with no pending pod has no node.
    assert "replicas" not in pool_body
    class_body = node_class["yaml_body"]
    for fragment in (
        'apiVersion = "karpenter.k8s.aws/v1"',
        "role = module.karpenter.node_iam_role_name",
        "alias = var.karpenter_ami_alias",
        '"karpenter.sh/discovery" = var.name',
        'httpTokens = "required"',
        "encrypted = true",
    ):
        assert fragment in class_body, fragment
    # The nodes Karpenter launches find their subnets and the node security group.
    assert module("vpc")["private_subnet_tags"]["karpenter.sh/discovery"] == "${var.name}"
    assert module("eks")["node_security_group_tags"] == {"karpenter.sh/discovery": "${var.name}"}


def test_node_pool_labels_are_what_the_chart_selects() -> None:
    pools = local("karpenter_node_pools")
    chart = yaml.safe_load(VALUES.read_text())["nodePools"]
    assert set(chart) == set(pools)
    for name in pools:
        assert chart[name]["nodeSelector"] == {"tessera.io/node-pool": name}
    for taint in pools["gpu"]["taints"]:
        assert {**taint, "operator": "Equal"} in chart["gpu"]["tolerations"]


# -- controllers --------------------------------------------------------------------------

RELEASES = {
    "karpenter_crd": ("oci://public.ecr.aws/karpenter", "karpenter-crd", "kube-system"),
    "karpenter": ("oci://public.ecr.aws/karpenter", "karpenter", "kube-system"),
    "keda": ("https://kedacore.github.io/charts", "keda", "keda"),
    "metrics_server": (
        "https://kubernetes-sigs.github.io/metrics-server/",
        "metrics-server",
        "kube-system",
    ),
    "external_secrets": (
        "https://charts.external-secrets.io",
        "external-secrets",
        "${local.external_secrets_namespace}",
    ),
    "load_balancer_controller": (
        "https://aws.github.io/eks-charts",
        "aws-load-balancer-controller",
        "kube-system",
    ),
}


def test_controllers_are_helm_releases_of_pinned_versions() -> None:
    releases = typed("resource", "helm_release")
    assert set(releases) == set(RELEASES)
    for name, (repository, chart, namespace) in RELEASES.items():
        release = releases[name]
        assert (release["repository"], release["chart"], release["namespace"]) == (
            repository,
            chart,
            namespace,
        ), name
        assert re.fullmatch(r"\d+\.\d+\.\d+", release["version"]), name
        assert "${module.eks}" in release["depends_on"], name
        if name != "karpenter_crd":
            # On the managed system nodes, never on nodes Karpenter may take away.
            assert '"tessera.io/node-pool" = "system"' in release["values"][0], name
    assert releases["karpenter"]["version"] == releases["karpenter_crd"]["version"]
    assert releases["karpenter"]["skip_crds"] is True


def test_karpenter_gets_its_interruption_queue_and_pod_identity() -> None:
    karpenter = module("karpenter")
    assert karpenter["cluster_name"] == "${module.eks.cluster_name}"
    assert karpenter["create_pod_identity_association"] is True
    assert (karpenter["namespace"], karpenter["service_account"]) == ("kube-system", "karpenter")
    assert karpenter["enable_spot_termination"] is True
    values = typed("resource", "helm_release")["karpenter"]["values"][0]
    assert "interruptionQueue = module.karpenter.queue_name" in values
    assert "name = module.karpenter.service_account" in values


# The subject of the IRSA module's trust, in terms of its variables namespace and
# service_account: the ServiceAccount's full name, matched exactly.
MODULE_SUBJECT = "system:serviceaccount:${var.namespace}:${var.service_account}"


def test_the_irsa_module_trusts_exactly_one_service_account() -> None:
    files = parsed_irsa_module()
    (statement,) = policy("modules/irsa_role:assume")
    assert statement["actions"] == ["sts:AssumeRoleWithWebIdentity"]
    assert statement.get("effect", "Allow") == "Allow"
    assert statement["principals"] == [
        {"type": "Federated", "identifiers": ["${var.oidc_provider_arn}"]}
    ]
    found = conditions(statement)
    assert found == {
        "${var.oidc_provider}:sub": ("StringEquals", [MODULE_SUBJECT]),
        "${var.oidc_provider}:aud": ("StringEquals", ["sts.amazonaws.com"]),
    }
    # One role, trusting that document; its permissions are policy_json (a policy of its
    # own) and managed_policy_arns, nothing else.
    (role,) = typed("resource", "aws_iam_role", files).values()
    assert role["assume_role_policy"] == "${data.aws_iam_policy_document.assume.json}"
    assert role["name"] == "${var.name}"
    (own,) = typed("resource", "aws_iam_policy", files).values()
    assert own["policy"] == "${var.policy_json}"
    assert own["count"] == "${var.create_policy ? 1 : 0}"
    attachments = typed("resource", "aws_iam_role_policy_attachment", files)
    assert {name: body["policy_arn"] for name, body in attachments.items()} == {
        "this": "${aws_iam_policy.this[0].arn}",
        "managed": "${var.managed_policy_arns[count.index]}",
    }
    assert all(body["role"] == "${aws_iam_role.this.name}" for body in attachments.values())
    assert not typed("resource", "aws_iam_role_policy", files), "no inline policies"
    outputs = dict(blocks("output", files))
    assert outputs["role_arn"]["value"] == "${aws_iam_role.this.arn}"
    assert outputs["role_name"]["value"] == "${aws_iam_role.this.name}"
    assert outputs["policy_arn"]["value"] == "${one(aws_iam_policy.this[*].arn)}"


def irsa_subject(name: str) -> str:
    """The ServiceAccount that the IRSA role of a module call trusts: the module's subject
    with the call's namespace and service_account put in."""
    role = irsa_roles()[name]
    # Every role trusts the cluster's own OIDC provider.
    assert role["oidc_provider_arn"] == "${module.eks.oidc_provider_arn}"
    assert role["oidc_provider"] == "${module.eks.oidc_provider}"
    return MODULE_SUBJECT.replace("${var.namespace}", role["namespace"]).replace(
        "${var.service_account}", role["service_account"]
    )


def test_every_irsa_role_is_the_modules() -> None:
    # The root configuration's only role of its own is RDS's monitoring role (a service
    # principal, no ServiceAccount); every IRSA role comes from modules/irsa_role.
    assert set(typed("resource", "aws_iam_role")) == {"database_monitoring"}
    assert not typed("resource", "aws_iam_role_policy")
    assert set(irsa_roles()) == {
        "service_role",
        "ebs_csi_role",
        "load_balancer_controller_role",
        "external_secrets_role",
    }
    for name, role in irsa_roles().items():
        assert "managed_policy_arns" not in role or name == "ebs_csi_role", name
    # State addresses from before the module move into its calls (no role is replaced).
    moves = [move for document in parsed().values() for move in document.get("moved", [])]
    assert moves
    for move in moves:
        target = re.match(r"\$\{module\.(\w+)", move["to"])
        assert target, move
        assert target[1] in irsa_roles(), move


def test_each_controller_role_trusts_only_its_own_service_account() -> None:
    roles = irsa_roles()
    assert irsa_subject("ebs_csi_role") == "system:serviceaccount:kube-system:ebs-csi-controller-sa"
    assert roles["ebs_csi_role"]["name"] == "${var.name}-ebs-csi"
    # The EBS CSI driver: the AWS managed policy, and no policy of its own.
    assert roles["ebs_csi_role"]["create_policy"] is False
    assert roles["ebs_csi_role"]["managed_policy_arns"] == [
        "arn:${local.partition}:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy"
    ]
    assert "policy_json" not in roles["ebs_csi_role"]
    assert module("eks")["addons"]["aws-ebs-csi-driver"]["service_account_role_arn"] == (
        "${module.ebs_csi_role.role_arn}"
    )
    assert (
        irsa_subject("load_balancer_controller_role")
        == "system:serviceaccount:kube-system:${local.load_balancer_controller_service_account}"
    )
    assert local("load_balancer_controller_service_account") == "aws-load-balancer-controller"
    assert roles["load_balancer_controller_role"]["name"] == "${var.name}-load-balancer-controller"
    assert roles["load_balancer_controller_role"]["policy_json"] == (
        "${data.aws_iam_policy_document.load_balancer_controller.json}"
    )
    assert irsa_subject("external_secrets_role") == (
        "system:serviceaccount:${local.external_secrets_namespace}:"
        "${local.external_secrets_service_account}"
    )
    assert local("external_secrets_namespace") == "external-secrets"
    assert local("external_secrets_service_account") == "external-secrets"
    assert roles["external_secrets_role"]["name"] == "${var.name}-external-secrets"
    for name in ("load_balancer_controller_role", "external_secrets_role"):
        assert roles[name].get("create_policy", True) is True, name


def test_the_load_balancer_controller_policy_is_scoped() -> None:
    statements = policy("load_balancer_controller")
    actions = actions_of("load_balancer_controller")
    assert {action.split(":")[0] for action in actions} == {
        "ec2",
        "elasticloadbalancing",
        "acm",
        "iam",
    }
    assert {a for a in actions if a.startswith("iam:")} == {"iam:CreateServiceLinkedRole"}
    for statement in statements:
        assert statement.get("effect", "Allow") == "Allow"
        if statement["resources"] == ["*"]:
            # Only calls that support no resource-level permissions get "*".
            assert all(
                re.fullmatch(r"(ec2|elasticloadbalancing):Describe\w+|acm:ListCertificates", a)
                for a in statement["actions"]
            ), statement["sid"]
        else:
            assert all("*:*" not in resource for resource in statement["resources"])
    sids = by_sid("load_balancer_controller")
    # What it deletes or changes must carry its cluster tag.
    for sid in ("DeleteItsSecurityGroups", "ChangeItsLoadBalancers", "RetagItsLoadBalancers"):
        assert conditions(sids[sid])["aws:ResourceTag/elbv2.k8s.aws/cluster"] == ("Null", ["false"])
    assert conditions(sids["ManageSecurityGroupRulesInTheVpc"])["ec2:Vpc"][0] == "ArnEquals"
    values = typed("resource", "helm_release")["load_balancer_controller"]["values"][0]
    for setting in ("enableShield = false", "enableWaf = false", "enableWafv2 = false"):
        assert setting in values
    assert "module.load_balancer_controller_role.role_arn" in values


# -- the services' IAM --------------------------------------------------------------------


def test_one_role_per_service_that_calls_s3() -> None:
    accounts = local("service_accounts")
    assert 'for service in ["ingest", "export", "triton"]' in accounts
    assert "${local.chart_fullname}-${service}" in accounts
    # Each service gets its own document, and nobody else's.
    assert local("service_policies") == {
        service: f"${{data.aws_iam_policy_document.{service}_s3.json}}"
        for service in SERVICES_WITH_S3
    }
    assert "services" not in typed("resource", "aws_iam_role"), "the shared role is gone"
    role = irsa_roles()["service_role"]
    assert role["for_each"] == "${local.service_accounts}"
    assert role["name"] == "${var.name}-${each.key}"
    assert role["policy_name"] == "${var.name}-${each.key}-s3"
    assert role["policy_json"] == "${local.service_policies[each.key]}"
    assert role.get("create_policy", True) is True
    assert "managed_policy_arns" not in role
    assert irsa_subject("service_role") == (
        "system:serviceaccount:${var.kubernetes_namespace}:${each.value}"
    )
    # annotations, gateway and inference: no role, no policy, no trust.
    names = json.dumps(
        [typed("resource", kind) for kind in ("aws_iam_role", "aws_iam_policy")]
        + [irsa_roles(), local("service_policies"), accounts]
    )
    for service in SERVICES_WITHOUT_S3:
        assert service not in names


def test_the_service_accounts_are_the_charts() -> None:
    # tessera.fullname: the release name if it contains "tessera", else <release>-tessera.
    assert local("release_fullname") == (
        '${strcontains(var.helm_release_name, "tessera") ? var.helm_release_name : '
        '"${var.helm_release_name}-tessera"}'
    )
    assert "var.helm_fullname_override" in local("chart_fullname")
    assert variable_default("helm_release_name") == "tessera"
    assert variable_default("kubernetes_namespace") == "tessera"
    helpers = (ROOT / "helm" / "tessera" / "templates" / "_helpers.tpl").read_text()
    assert "contains $name .Release.Name" in helpers


def test_ingest_reads_and_writes_only_its_media() -> None:
    sids = by_sid("ingest_s3")
    assert set(sids) == {"ListMedia", "ReadWriteMedia", "ListSourceBuckets", "ReadSourceBuckets"}
    assert sids["ListMedia"]["actions"] == ["s3:ListBucket"]
    assert sids["ListMedia"]["resources"] == [BUCKET]
    assert conditions(sids["ListMedia"]) == {
        "s3:prefix": ("StringLikeIfExists", ["${var.media_prefix}*"])
    }
    assert set(sids["ReadWriteMedia"]["actions"]) == {
        "s3:GetObject",
        "s3:PutObject",
        "s3:DeleteObject",
        "s3:AbortMultipartUpload",
    }
    assert sids["ReadWriteMedia"]["resources"] == [f"{BUCKET}/${{var.media_prefix}}*"]
    # Source buckets: listed and read, nothing else, and only the ones configured.
    assert sids["ListSourceBuckets"]["actions"] == ["s3:ListBucket"]
    assert sids["ReadSourceBuckets"]["actions"] == ["s3:GetObject"]
    assert "var.ingest_source_buckets" in sids["ReadSourceBuckets"]["resources"]
    assert sids["ReadSourceBuckets"]["resources"].endswith('${bucket}/*"]}')
    assert variable_default("ingest_source_buckets") == []
    assert variable_default("media_prefix") == "tasks/"


def test_export_reads_and_writes_only_under_its_prefixes() -> None:
    sids = by_sid("export_s3")
    assert set(sids) == {"ListExports", "ReadWriteExports"}
    assert sids["ListExports"]["actions"] == ["s3:ListBucket"]
    assert sids["ListExports"]["resources"] == [BUCKET]
    (test, values) = conditions(sids["ListExports"])["s3:prefix"]
    assert test == "StringLikeIfExists"
    assert values == '${[for prefix in local.export_prefixes : "${prefix}*"]}'
    assert set(sids["ReadWriteExports"]["actions"]) == {
        "s3:GetObject",
        "s3:PutObject",
        "s3:DeleteObject",
        "s3:AbortMultipartUpload",
    }
    assert sids["ReadWriteExports"]["resources"] == (
        '${[for prefix in local.export_prefixes : "${aws_s3_bucket.data.arn}/${prefix}*"]}'
    )
    assert local("export_prefixes") == "${concat([var.export_prefix], var.export_upload_prefixes)}"
    assert variable_default("export_prefix") == "exports/"
    assert variable_default("export_upload_prefixes") == ["imports/", "backups/", "datasets/"]


def test_triton_only_reads_its_models() -> None:
    sids = by_sid("triton_s3")
    assert set(sids) == {"ListModels", "ReadModels"}
    assert sids["ListModels"]["actions"] == ["s3:ListBucket"]
    assert sids["ListModels"]["resources"] == [BUCKET]
    assert conditions(sids["ListModels"]) == {
        "s3:prefix": ("StringLikeIfExists", ["${var.model_prefix}*"])
    }
    assert sids["ReadModels"]["actions"] == ["s3:GetObject"]
    assert sids["ReadModels"]["resources"] == [f"{BUCKET}/${{var.model_prefix}}*"]
    assert variable_default("model_prefix") == "triton-models/"
    chart_prefix = yaml.safe_load(VALUES.read_text())["triton"]["modelRepositoryPrefix"]
    assert variable_default("model_prefix") == f"{chart_prefix.rstrip('/')}/"


def test_no_policy_grants_wildcard_actions() -> None:
    for name, document in policy_documents():
        for statement in policy(name):
            assert statement.get("effect", "Allow") in {"Allow", "Deny"}
            for action in statement["actions"]:
                if statement.get("effect") == "Deny":
                    continue
                assert not action.endswith(":*"), (name, action)
                assert action != "*", (name, action)
        assert document


def test_no_wildcard_resources_except_where_aws_requires_them() -> None:
    allowed = {("load_balancer_controller", "Discover")}
    for name, _ in policy_documents():
        for statement in policy(name):
            if statement.get("effect") == "Deny" or "resources" not in statement:
                continue
            if statement["resources"] == ["*"]:
                assert (name, statement.get("sid")) in allowed, name


# -- database -----------------------------------------------------------------------------


def test_the_database_is_private_and_admits_only_the_nodes() -> None:
    database = typed("resource", "aws_db_instance")["postgres"]
    assert database["engine"] == "postgres"
    assert database["publicly_accessible"] is False
    assert database["storage_encrypted"] is True
    assert database["manage_master_user_password"] is True
    assert database["master_user_secret_kms_key_id"] == "${aws_kms_key.database.arn}"
    assert "password" not in database
    assert database["db_subnet_group_name"] == "${module.vpc.database_subnet_group_name}"
    assert database["vpc_security_group_ids"] == ["${aws_security_group.database.id}"]
    assert database["parameter_group_name"] == "${aws_db_parameter_group.postgres.name}"
    group = typed("resource", "aws_security_group")["database"]
    assert "ingress" not in group
    assert "egress" not in group
    rules = [
        rule
        for rule in typed("resource", "aws_vpc_security_group_ingress_rule").values()
        if rule["security_group_id"] == "${aws_security_group.database.id}"
    ]
    assert len(rules) == 1
    (rule,) = rules
    assert rule["referenced_security_group_id"] == "${module.eks.node_security_group_id}"
    assert (rule["ip_protocol"], rule["from_port"], rule["to_port"]) == ("tcp", 5432, 5432)
    assert "cidr_ipv4" not in rule
    parameters = {
        p["name"]: p["value"]
        for p in typed("resource", "aws_db_parameter_group")["postgres"]["parameter"]
    }
    assert {"log_statement", "log_min_duration_statement", "rds.force_ssl"} <= set(parameters)


def test_the_app_role_secret() -> None:
    password = typed("resource", "random_password")["database_app"]
    assert password["length"] >= 32
    assert password["special"] is False
    secret = typed("resource", "aws_secretsmanager_secret")["database_app"]
    assert secret["kms_key_id"] == "${aws_kms_key.database.arn}"
    version = typed("resource", "aws_secretsmanager_secret_version")["database_app"]
    assert version["secret_id"] == "${aws_secretsmanager_secret.database_app.id}"
    body = version["secret_string"]
    assert body.startswith("${jsonencode({")
    keys = re.findall(r"(\w+) = ", body)
    assert keys == ["username", "password", "host", "port", "dbname"]
    assert "password = random_password.database_app.result" in body
    assert variable_default("db_app_username") == "tessera_app"
    assert typed("resource", "aws_kms_key")["database"]["enable_key_rotation"] is True


def test_external_secrets_reads_exactly_the_two_database_secrets() -> None:
    sids = by_sid("external_secrets")
    assert set(sids) == {"ReadTheDatabaseSecrets", "DecryptThemThroughSecretsManager"}
    read = sids["ReadTheDatabaseSecrets"]
    assert set(read["actions"]) == {
        "secretsmanager:GetSecretValue",
        "secretsmanager:DescribeSecret",
    }
    assert read["resources"] == [
        "${aws_secretsmanager_secret.database_app.arn}",
        "${aws_db_instance.postgres.master_user_secret[0].secret_arn}",
    ]
    decrypt = sids["DecryptThemThroughSecretsManager"]
    assert decrypt["actions"] == ["kms:Decrypt"]
    assert decrypt["resources"] == ["${aws_kms_key.database.arn}"]
    assert conditions(decrypt) == {
        "kms:ViaService": ("StringEquals", ["secretsmanager.${var.region}.amazonaws.com"])
    }
    role = irsa_roles()["external_secrets_role"]
    assert role["policy_json"] == "${data.aws_iam_policy_document.external_secrets.json}"
    values = typed("resource", "helm_release")["external_secrets"]["values"][0]
    assert "module.external_secrets_role.role_arn" in values
    store = typed("resource", "kubectl_manifest")["cluster_secret_store"]["yaml_body"]
    for fragment in (
        'apiVersion = "external-secrets.io/v1"',
        'kind = "ClusterSecretStore"',
        "name = local.external_secrets_store",
        'service = "SecretsManager"',
        "region = var.region",
        "namespaces = [var.kubernetes_namespace]",
    ):
        assert fragment in store, fragment
    assert local("external_secrets_store") == "tessera-aws-secrets-manager"


# -- ingress ------------------------------------------------------------------------------


def test_the_certificate_is_validated_by_dns() -> None:
    certificate = typed("resource", "aws_acm_certificate")["ingress"]
    assert certificate["domain_name"] == "${var.domain_name}"
    assert certificate["validation_method"] == "DNS"
    records = typed("resource", "aws_route53_record")["certificate_validation"]
    assert records["for_each"].startswith("${var.route53_zone_id == null ? {} :")
    validation = typed("resource", "aws_acm_certificate_validation")["ingress"]
    assert validation["count"] == "${var.route53_zone_id == null ? 0 : 1}"
    # The ARN handed to the chart waits for the validation when Terraform does it.
    assert "aws_acm_certificate_validation.ingress" in local("certificate_arn")
    assert dict(blocks("output"))["acm_certificate_arn"]["value"] == "${local.certificate_arn}"
    assert variable_default("route53_zone_id") is None
    assert module("vpc")["public_subnet_tags"] == {"kubernetes.io/role/elb": 1}
    assert module("vpc")["private_subnet_tags"]["kubernetes.io/role/internal-elb"] == 1


# -- bucket -------------------------------------------------------------------------------


def test_the_bucket_is_private_encrypted_and_unversioned() -> None:
    (versioning,) = typed("resource", "aws_s3_bucket_versioning")["data"][
        "versioning_configuration"
    ]
    assert versioning["status"] == "Disabled"
    (rule,) = typed("resource", "aws_s3_bucket_server_side_encryption_configuration")["data"][
        "rule"
    ]
    (default,) = rule["apply_server_side_encryption_by_default"]
    assert default["sse_algorithm"] == "AES256"
    block = typed("resource", "aws_s3_bucket_public_access_block")["data"]
    assert all(
        block[setting] is True
        for setting in (
            "block_public_acls",
            "block_public_policy",
            "ignore_public_acls",
            "restrict_public_buckets",
        )
    )


def test_export_archives_expire_and_uploads_are_aborted() -> None:
    rules = {
        rule["id"]: rule
        for rule in typed("resource", "aws_s3_bucket_lifecycle_configuration")["data"]["rule"]
    }
    everything = rules["abort-incomplete-multipart-uploads"]
    assert everything["filter"] == [{}]
    assert everything["abort_incomplete_multipart_upload"][0]["days_after_initiation"] >= 1
    exports = rules["expire-export-archives"]
    assert exports["status"] == "Enabled"
    assert exports["filter"] == [{"prefix": "${var.export_prefix}"}]
    assert exports["expiration"] == [{"days": "${var.export_retention_days}"}]
    assert variable_default("export_retention_days") == 7


# -- variables and outputs ----------------------------------------------------------------


def test_every_variable_has_a_description_and_a_type() -> None:
    variables = dict(blocks("variable"))
    assert variables
    for name, body in variables.items():
        assert body.get("description", "").strip(), f"variable {name} has no description"
        assert "type" in body, f"variable {name} has no type"
        for validation in body.get("validation", []):
            assert validation["condition"]
            assert validation["error_message"]
    required = {name for name, body in variables.items() if "default" not in body}
    assert required == {"bucket_name", "cluster_endpoint_public_access_cidrs", "domain_name"}
    assert "service_account_name" not in variables
    assert "node_group_sizes" not in variables


def test_the_irsa_module_documents_its_interface() -> None:
    files = parsed_irsa_module()
    variables = dict(blocks("variable", files))
    for name, body in variables.items():
        assert body.get("description", "").strip(), f"variable {name} has no description"
        assert "type" in body, f"variable {name} has no type"
    required = {name for name, body in variables.items() if "default" not in body}
    assert required == {
        "name",
        "oidc_provider_arn",
        "oidc_provider",
        "namespace",
        "service_account",
    }
    assert {"policy_json", "managed_policy_arns", "tags"} <= set(variables)
    outputs = dict(blocks("output", files))
    assert set(outputs) == {"role_arn", "role_name", "policy_arn"}
    assert all(body.get("description", "").strip() for body in outputs.values())
    (terraform,) = files["versions.tf"]["terraform"]
    (providers,) = terraform["required_providers"]
    assert providers["aws"]["source"] == "hashicorp/aws"
    # Every call passes only what the module declares, and what it requires.
    for name, role in irsa_roles().items():
        arguments = set(role) - {"source", "for_each"}
        assert arguments <= set(variables), (name, arguments - set(variables))
        assert required <= arguments, (name, required - arguments)


def test_outputs_feed_the_charts_values() -> None:
    outputs = dict(blocks("output"))
    assert {
        "region",
        "bucket_name",
        "service_role_arns",
        "database_app_secret_name",
        "database_owner_secret_arn",
        "database_endpoint",
        "database_name",
        "external_secrets_store",
        "acm_certificate_arn",
        "acm_validation_records",
        "karpenter_node_pools",
        "chart_values",
    } <= set(outputs)
    assert "services_role_arn" not in outputs
    assert all(body.get("description", "").strip() for body in outputs.values())
    assert outputs["service_role_arns"]["value"] == "${local.service_role_arns}"
    assert local("service_role_arns") == (
        "${{for service, role in module.service_role : service => role.role_arn}}"
    )
    assert outputs["service_policy_arns"]["value"] == (
        "${{for service, role in module.service_role : service => role.policy_arn}}"
    )
    assert outputs["service_account_names"]["value"] == "${local.service_accounts}"
    assert outputs["database_owner_secret_arn"]["value"] == (
        "${aws_db_instance.postgres.master_user_secret[0].secret_arn}"
    )
    values = outputs["chart_values"]["value"]
    assert values["database"]["externalSecrets"] == {
        "store": "${local.external_secrets_store}",
        "appSecret": "${aws_secretsmanager_secret.database_app.name}",
        "ownerSecret": "${aws_db_instance.postgres.master_user_secret[0].secret_arn}",
    }
    assert "local.service_role_arns" in values["serviceAccounts"]
    assert "roleArn = arn" in values["serviceAccounts"]
    assert values["image"]["repository"] == outputs["image_repository"]["value"]
    assert set(values["ingress"]["alb"]) == {"certificateArn"}


# -- checkov ------------------------------------------------------------------------------


def inline_skips() -> list[tuple[str, str, str]]:
    """(file, check, justification) of every `#checkov:skip=` in terraform/, its local
    modules included (checkov scans them with the root and honours their skips)."""
    return [
        (str(path.relative_to(TERRAFORM)), match[1], match[2].strip())
        for path in sorted(TERRAFORM.rglob("*.tf"))
        if ".terraform" not in path.parts
        for match in SKIP.finditer(path.read_text())
    ]


def test_every_checkov_skip_is_justified() -> None:
    skips = inline_skips()
    assert skips
    for file, check, justification in skips:
        assert len(justification) >= 60, (file, check)


@pytest.fixture(scope="module")
def checkov_report() -> dict[str, Any]:
    """One checkov run over terraform/ (about 10-20 s)."""
    if not CHECKOV.exists():
        pytest.skip(f"{CHECKOV.relative_to(ROOT)} is missing (make install creates it)")
    # --skip-download: no request to the Prisma Cloud API (unreachable offline; it only
    # adds guideline links to the report).
    result = subprocess.run(
        [
            str(CHECKOV),
            *("-d", str(TERRAFORM), "--framework", "terraform"),
            *("--compact", "--quiet", "-o", "json", "--skip-download"),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        cwd=ROOT,
    )
    assert result.stdout.strip(), result.stderr[-2000:]
    report = json.loads(result.stdout)
    if isinstance(report, list):
        (report,) = (entry for entry in report if entry.get("check_type") == "terraform")
    return report  # type: ignore[no-any-return]


def test_checkov_finds_nothing(checkov_report: dict[str, Any]) -> None:
    summary = checkov_report["summary"]
    failed = [
        f"{check['check_id']} {check['resource']} ({check['file_path']}): {check['check_name']}"
        for check in checkov_report["results"]["failed_checks"]
    ]
    assert summary["failed"] == 0, "\n".join(failed)
    assert summary["parsing_errors"] == 0
    assert summary["passed"] > 100
    # Every skip it reports is one of the inline, justified ones.
    assert summary["skipped"] == len(inline_skips())


def test_terraform_fmt_is_clean() -> None:
    terraform = shutil.which("terraform")
    if terraform is None:
        pytest.skip("terraform is not on PATH; formatting is checked where it is")
    result = subprocess.run(
        [terraform, "fmt", "-check", "-diff", "-recursive", str(TERRAFORM)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout
