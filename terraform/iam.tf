################################################################################
# What the services may do in their bucket, and the IRSA role that carries it.
#
# S3 authorizes by action, and several API calls share one action:
#   - HeadObject is authorized by s3:GetObject (there is no s3:HeadObject action),
#     and so are presigned GET URLs signed with these credentials;
#   - HeadBucket (the services' readiness check) is authorized by s3:ListBucket;
#   - CreateMultipartUpload, UploadPart and CompleteMultipartUpload are authorized by
#     s3:PutObject; AbortMultipartUpload has its own action.
# Nothing else is granted: no s3:DeleteObject (tessera.platform.storage's delete() is
# denied; expire objects with lifecycle rules instead), no bucket administration.
################################################################################

data "aws_iam_policy_document" "services_s3" {
  statement {
    sid       = "ListTheBucket"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.data.arn]
  }

  statement {
    sid = "ReadAndWriteObjects"
    actions = [
      "s3:GetObject",
      "s3:PutObject",
      "s3:AbortMultipartUpload",
    ]
    resources = ["${aws_s3_bucket.data.arn}/*"]
  }
}

resource "aws_iam_policy" "services_s3" {
  name        = "${var.name}-services-s3"
  description = "Tessera services and Triton: list, read and write objects in ${var.bucket_name}"
  policy      = data.aws_iam_policy_document.services_s3.json
}

# Only the chart's ServiceAccount, in its namespace, may assume the role.
data "aws_iam_policy_document" "services_assume" {
  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]

    principals {
      type        = "Federated"
      identifiers = [module.eks.oidc_provider_arn]
    }

    condition {
      test     = "StringEquals"
      variable = "${module.eks.oidc_provider}:sub"
      values   = ["system:serviceaccount:${var.kubernetes_namespace}:${var.service_account_name}"]
    }

    condition {
      test     = "StringEquals"
      variable = "${module.eks.oidc_provider}:aud"
      values   = ["sts.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "services" {
  name               = "${var.name}-services"
  description        = "IRSA role of the Tessera chart's ServiceAccount"
  assume_role_policy = data.aws_iam_policy_document.services_assume.json
}

resource "aws_iam_role_policy_attachment" "services_s3" {
  role       = aws_iam_role.services.name
  policy_arn = aws_iam_policy.services_s3.arn
}
