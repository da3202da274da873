################################################################################
# The services' bucket: media, chunks, export archives and Triton's model repository.
# Layout (each prefix belongs to one service; iam.tf grants each only its own):
#   media_prefix            ingest: tasks' media, chunks, previews, uploads
#   export_prefix           export: export archives, expired after export_retention_days
#   export_upload_prefixes  export: uploaded annotation files, backups, datasets
#   model_prefix            Triton's model repository (read-only for Triton)
################################################################################

resource "aws_s3_bucket" "data" {
  #checkov:skip=CKV_AWS_18:No server access logs: every chunk and frame read is an S3 request, so the log would be about as large as the traffic, and the services log their own requests with the user. Enable CloudTrail S3 data events on this bucket (at the account or organization level) where object-level audit is required.
  #checkov:skip=CKV_AWS_144:No cross-region replication: the deployment is single-region by design (cluster, database and bucket in var.region), S3 stores objects across several availability zones, and project backups are exported archives. Replicate at the account level if a regional disaster-recovery copy is required.
  #checkov:skip=CKV_AWS_145:SSE-S3 rather than SSE-KMS: objects are encrypted at rest either way. A customer-managed key would add kms:Decrypt and kms:GenerateDataKey to every service role (whose policies are S3-only by design, iam.tf) and KMS requests to reads and writes (fewer with S3 Bucket Keys, not none); access is already separated per prefix by IAM, and nothing in the bucket is shared across accounts.
  #checkov:skip=CKV2_AWS_62:No event notifications: nothing consumes them. The services record every object they write in PostgreSQL and announce work over NATS JetStream.
  #checkov:skip=CKV_AWS_21:Versioning stays off: objects are written once under fresh keys, and versions would keep every deleted export archive and upload, undoing the lifecycle expiry and the services' own deletes.
  bucket = var.bucket_name
}

# Objects are written once under fresh keys; versions would only keep garbage.
resource "aws_s3_bucket_versioning" "data" {
  bucket = aws_s3_bucket.data.id

  versioning_configuration {
    status = "Disabled"
  }
}

# SSE-S3: encrypted at rest without a KMS key, so the IAM policy below needs no kms:*.
resource "aws_s3_bucket_server_side_encryption_configuration" "data" {
  bucket = aws_s3_bucket.data.id

  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_public_access_block" "data" {
  bucket = aws_s3_bucket.data.id

  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "data" {
  bucket = aws_s3_bucket.data.id

  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

# Multipart uploads that a crashed process never completed or aborted still cost storage.
# Export archives expire: the export service deletes them itself after
# TESSERA_EXPORT_LIFETIME_S (a day by default), and this rule removes whatever it
# missed; export_retention_days must exceed that lifetime.
resource "aws_s3_bucket_lifecycle_configuration" "data" {
  bucket = aws_s3_bucket.data.id

  rule {
    id     = "abort-incomplete-multipart-uploads"
    status = "Enabled"

    filter {}

    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }

  rule {
    id     = "expire-export-archives"
    status = "Enabled"

    filter {
      prefix = var.export_prefix
    }

    expiration {
      days = var.export_retention_days
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 1
    }
  }
}

data "aws_iam_policy_document" "data_bucket" {
  statement {
    sid     = "DenyInsecureTransport"
    effect  = "Deny"
    actions = ["s3:*"]
    resources = [
      aws_s3_bucket.data.arn,
      "${aws_s3_bucket.data.arn}/*",
    ]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_s3_bucket_policy" "data" {
  bucket = aws_s3_bucket.data.id
  policy = data.aws_iam_policy_document.data_bucket.json

  depends_on = [aws_s3_bucket_public_access_block.data]
}
