################################################################################
# One image repository per process: <name>-<service>, as the chart expects with
# image.repository = <registry>/<name>. The node role of the EKS module may pull.
################################################################################

locals {
  images = ["gateway", "annotations", "ingest", "export", "inference"]
}

resource "aws_ecr_repository" "images" {
  for_each = toset(local.images)

  name                 = "${var.name}-${each.key}"
  image_tag_mutability = "IMMUTABLE"

  image_scanning_configuration {
    scan_on_push = true
  }

  # The AWS managed key aws/ecr: nodes pull without kms permissions (ECR decrypts
  # through its own grant on the key).
  encryption_configuration {
    encryption_type = "KMS"
  }
}
