################################################################################
# One IRSA role per process that calls S3 (modules/irsa_role, like the controllers'),
# each trusted by exactly its own ServiceAccount and allowed exactly its own part of the
# bucket:
#   ingest  media, chunks, previews and uploads under media_prefix (tasks/<id>/...),
#           plus read access to the source buckets in ingest_source_buckets
#   export  export archives under export_prefix, its uploads (annotation imports,
#           backup restores, dataset imports) under export_upload_prefixes
#   triton  read-only, the model repository under model_prefix
# annotations, gateway and inference never touch S3 and get no role at all.
#
# S3 authorizes by action, and several API calls share one action:
#   - HeadObject is authorized by s3:GetObject (there is no s3:HeadObject action),
#     and so are presigned GET URLs signed with these credentials;
#   - HeadBucket (the services' readiness check; Triton calls it before each listing)
#     and ListObjectsV2 are authorized by s3:ListBucket;
#   - CreateMultipartUpload, UploadPart and CompleteMultipartUpload are authorized by
#     s3:PutObject; AbortMultipartUpload has its own action;
#   - DeleteObjects (the batch delete behind delete_prefix) checks s3:DeleteObject on
#     every key.
# s3:ListBucket is conditioned on s3:prefix with StringLikeIfExists: a listing that
# names a prefix must name one of the role's own, and HeadBucket, which carries no
# prefix, still passes. No bucket administration, no KMS (the bucket uses SSE-S3).
################################################################################

locals {
  # The chart's full name (helm/tessera/templates/_helpers.tpl, tessera.fullname): the
  # release name when it contains the chart's name, else "<release>-tessera"; the
  # ServiceAccounts are "<fullname>-<service>" (tessera.componentName).
  release_fullname = strcontains(var.helm_release_name, "tessera") ? var.helm_release_name : "${var.helm_release_name}-tessera"
  chart_fullname   = trimsuffix(substr(var.helm_fullname_override != "" ? var.helm_fullname_override : local.release_fullname, 0, 63), "-")

  service_accounts = {
    for service in ["ingest", "export", "triton"] :
    service => trimsuffix(substr("${local.chart_fullname}-${service}", 0, 63), "-")
  }

  export_prefixes = concat([var.export_prefix], var.export_upload_prefixes)

  service_policies = {
    ingest = data.aws_iam_policy_document.ingest_s3.json
    export = data.aws_iam_policy_document.export_s3.json
    triton = data.aws_iam_policy_document.triton_s3.json
  }
}

data "aws_iam_policy_document" "ingest_s3" {
  statement {
    sid       = "ListMedia"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.data.arn]

    condition {
      test     = "StringLikeIfExists"
      variable = "s3:prefix"
      values   = ["${var.media_prefix}*"]
    }
  }

  statement {
    sid = "ReadWriteMedia"
    actions = [
      "s3:GetObject",
      "s3:PutObject",
      "s3:DeleteObject",
      "s3:AbortMultipartUpload",
    ]
    resources = ["${aws_s3_bucket.data.arn}/${var.media_prefix}*"]
  }

  # Buckets that tasks' media are read from (none by default).
  dynamic "statement" {
    for_each = length(var.ingest_source_buckets) > 0 ? [1] : []

    content {
      sid       = "ListSourceBuckets"
      actions   = ["s3:ListBucket"]
      resources = [for bucket in var.ingest_source_buckets : "arn:${local.partition}:s3:::${bucket}"]
    }
  }

  dynamic "statement" {
    for_each = length(var.ingest_source_buckets) > 0 ? [1] : []

    content {
      sid       = "ReadSourceBuckets"
      actions   = ["s3:GetObject"]
      resources = [for bucket in var.ingest_source_buckets : "arn:${local.partition}:s3:::${bucket}/*"]
    }
  }
}

data "aws_iam_policy_document" "export_s3" {
  statement {
    sid       = "ListExports"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.data.arn]

    condition {
      test     = "StringLikeIfExists"
      variable = "s3:prefix"
      values   = [for prefix in local.export_prefixes : "${prefix}*"]
    }
  }

  statement {
    sid = "ReadWriteExports"
    actions = [
      "s3:GetObject",
      "s3:PutObject",
      "s3:DeleteObject",
      "s3:AbortMultipartUpload",
    ]
    resources = [for prefix in local.export_prefixes : "${aws_s3_bucket.data.arn}/${prefix}*"]
  }
}

data "aws_iam_policy_document" "triton_s3" {
  statement {
    sid       = "ListModels"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.data.arn]

    condition {
      test     = "StringLikeIfExists"
      variable = "s3:prefix"
      values   = ["${var.model_prefix}*"]
    }
  }

  statement {
    sid       = "ReadModels"
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.data.arn}/${var.model_prefix}*"]
  }
}

# One role per service, trusted by its own ServiceAccount in the chart's namespace only,
# with its policy above (named <name>-<service>-s3).
module "service_role" {
  source   = "./modules/irsa_role"
  for_each = local.service_accounts

  name        = "${var.name}-${each.key}"
  description = "IRSA role of the ServiceAccount ${var.kubernetes_namespace}/${each.value}"

  oidc_provider_arn = module.eks.oidc_provider_arn
  oidc_provider     = module.eks.oidc_provider
  namespace         = var.kubernetes_namespace
  service_account   = each.value

  policy_name        = "${var.name}-${each.key}-s3"
  policy_description = "Tessera ${each.key}: its own objects in ${var.bucket_name}"
  policy_json        = local.service_policies[each.key]
}
