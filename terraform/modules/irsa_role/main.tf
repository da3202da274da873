################################################################################
# An IRSA role: an IAM role that exactly one Kubernetes ServiceAccount may assume, with
# the web identity token the cluster's OIDC provider issues it, and its permissions (a
# policy of its own from policy_json, and managed policies by ARN).
################################################################################

# Only the ServiceAccount namespace/service_account, with a token meant for STS.
data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]

    principals {
      type        = "Federated"
      identifiers = [var.oidc_provider_arn]
    }

    condition {
      test     = "StringEquals"
      variable = "${var.oidc_provider}:sub"
      values   = ["system:serviceaccount:${var.namespace}:${var.service_account}"]
    }

    condition {
      test     = "StringEquals"
      variable = "${var.oidc_provider}:aud"
      values   = ["sts.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "this" {
  name               = var.name
  description        = var.description
  assume_role_policy = data.aws_iam_policy_document.assume.json
  tags               = var.tags
}

resource "aws_iam_policy" "this" {
  count = var.create_policy ? 1 : 0

  name        = coalesce(var.policy_name, var.name)
  description = var.policy_description
  policy      = var.policy_json
  tags        = var.tags

  lifecycle {
    precondition {
      condition     = var.policy_json != null
      error_message = "policy_json is required when create_policy is true."
    }
  }
}

resource "aws_iam_role_policy_attachment" "this" {
  count = var.create_policy ? 1 : 0

  role       = aws_iam_role.this.name
  policy_arn = aws_iam_policy.this[0].arn
}

# By position, not for_each: an ARN built from data sources may be unknown at plan time.
resource "aws_iam_role_policy_attachment" "managed" {
  count = length(var.managed_policy_arns)

  role       = aws_iam_role.this.name
  policy_arn = var.managed_policy_arns[count.index]
}
