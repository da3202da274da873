"""terraform/: parses, and says what the design asks for (node groups, IAM, network).

`terraform validate` needs the providers, which cannot be downloaded here; these tests
read the HCL with python-hcl2 instead, and run `terraform fmt -check` when the binary
is on PATH.
"""

from __future__ import annotations

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

OPTIONS = SerializationOptions(strip_string_quotes=True, explicit_blocks=False, with_comments=False)

S3_ACTIONS = {"s3:ListBucket", "s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"}


@cache
def parsed() -> dict[str, dict[str, Any]]:
    """Every .tf file of terraform/, parsed, by file name."""
    return {
        path.name: hcl2.loads(path.read_text(), serialization_options=OPTIONS)
        for path in sorted(TERRAFORM.glob("*.tf"))
    }


def blocks(kind: str) -> Iterator[tuple[str, Any]]:
    """(label, body) of every top-level block of a kind (`module`, `variable`, ...)."""
    for document in parsed().values():
        for entry in document.get(kind, []):
            yield from entry.items()


def typed(kind: str, type_name: str) -> dict[str, Any]:
    """The resources (or data sources) of one type, by name."""
    return {
        name: body
        for block_type, named in blocks(kind)
        if block_type == type_name
        for name, body in named.items()
    }


def module(name: str) -> dict[str, Any]:
    """The arguments of one module block."""
    found = dict(blocks("module"))
    return found[name]  # type: ignore[no-any-return]


def test_every_file_parses() -> None:
    files = parsed()
    assert set(files) >= {
        "versions.tf",
        "variables.tf",
        "outputs.tf",
        "main.tf",
        "eks.tf",
        "s3.tf",
        "iam.tf",
        "rds.tf",
        "ecr.tf",
    }
    assert all(files.values())


def test_providers_and_terraform_are_pinned() -> None:
    (terraform,) = parsed()["versions.tf"]["terraform"]
    assert terraform["required_version"].startswith(">=")
    (providers,) = terraform["required_providers"]
    assert set(providers) == {"aws", "tls", "time"}
    for provider in providers.values():
        assert provider["source"].startswith("hashicorp/")
        assert provider["version"].startswith("~>")


def test_public_modules_at_their_current_majors() -> None:
    eks, vpc = module("eks"), module("vpc")
    assert (eks["source"], eks["version"]) == ("terraform-aws-modules/eks/aws", "~> 21.0")
    assert (vpc["source"], vpc["version"]) == ("terraform-aws-modules/vpc/aws", "~> 6.0")
    assert eks["enable_irsa"] is True
    assert eks["subnet_ids"] == "${module.vpc.private_subnets}"
    assert "aws-ebs-csi-driver" in eks["addons"]


def test_node_groups_match_the_workloads() -> None:
    groups = module("eks")["eks_managed_node_groups"]
    assert {name: group["instance_types"] for name, group in groups.items()} == {
        "api": ["c5.xlarge"],
        "media": ["c5.2xlarge"],
        "gpu": ["g4dn.xlarge"],
    }
    assert groups["api"]["ami_type"] == groups["media"]["ami_type"] == "AL2023_x86_64_STANDARD"
    assert groups["gpu"]["ami_type"] == "AL2023_x86_64_NVIDIA"
    assert list(groups["gpu"]["taints"].values()) == [
        {"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"}
    ]
    assert "taints" not in groups["api"]
    assert "taints" not in groups["media"]


def test_node_labels_are_what_the_chart_selects() -> None:
    groups = module("eks")["eks_managed_node_groups"]
    pools = yaml.safe_load(VALUES.read_text())["nodePools"]
    assert set(pools) == set(groups)
    for name, group in groups.items():
        assert pools[name]["nodeSelector"] == group["labels"]
    assert {
        "key": "nvidia.com/gpu",
        "operator": "Equal",
        "value": "true",
        "effect": "NoSchedule",
    } in pools["gpu"]["tolerations"]


def test_the_services_policy_grants_exactly_the_intended_s3_actions() -> None:
    statements = typed("data", "aws_iam_policy_document")["services_s3"]["statement"]
    assert all(statement.get("effect", "Allow") == "Allow" for statement in statements)
    granted = {action for statement in statements for action in statement["actions"]}
    assert granted == S3_ACTIONS
    by_action = {
        action: statement["resources"]
        for statement in statements
        for action in statement["actions"]
    }
    assert by_action["s3:ListBucket"] == ["${aws_s3_bucket.data.arn}"]
    for action in S3_ACTIONS - {"s3:ListBucket"}:
        assert by_action[action] == ["${aws_s3_bucket.data.arn}/*"]


def test_the_irsa_role_trusts_only_the_charts_service_account() -> None:
    (statement,) = typed("data", "aws_iam_policy_document")["services_assume"]["statement"]
    assert statement["actions"] == ["sts:AssumeRoleWithWebIdentity"]
    assert statement["principals"] == [
        {"type": "Federated", "identifiers": ["${module.eks.oidc_provider_arn}"]}
    ]
    conditions = {c["variable"]: (c["test"], c["values"]) for c in statement["condition"]}
    assert conditions == {
        "${module.eks.oidc_provider}:sub": (
            "StringEquals",
            ["system:serviceaccount:${var.kubernetes_namespace}:${var.service_account_name}"],
        ),
        "${module.eks.oidc_provider}:aud": ("StringEquals", ["sts.amazonaws.com"]),
    }
    attachment = typed("resource", "aws_iam_role_policy_attachment")["services_s3"]
    assert attachment["role"] == "${aws_iam_role.services.name}"
    assert attachment["policy_arn"] == "${aws_iam_policy.services_s3.arn}"


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


def test_the_database_is_private_and_admits_only_the_nodes() -> None:
    database = typed("resource", "aws_db_instance")["postgres"]
    assert database["engine"] == "postgres"
    assert database["publicly_accessible"] is False
    assert database["storage_encrypted"] is True
    assert database["manage_master_user_password"] is True
    assert "password" not in database
    assert database["db_subnet_group_name"] == "${module.vpc.database_subnet_group_name}"
    assert database["vpc_security_group_ids"] == ["${aws_security_group.database.id}"]
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
    assert required == {"bucket_name", "cluster_endpoint_public_access_cidrs"}


def test_every_output_has_a_description() -> None:
    outputs = dict(blocks("output"))
    assert {"services_role_arn", "bucket_name", "s3_policy_arn", "region"} <= set(outputs)
    assert all(body.get("description", "").strip() for body in outputs.values())


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
