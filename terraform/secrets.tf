################################################################################
# Database credentials in Secrets Manager, and the External Secrets Operator that
# copies them into Kubernetes Secrets.
#
# Two roles, two secrets, one KMS key:
#   owner  RDS's managed master user (rds.tf: manage_master_user_password). RDS keeps
#          and rotates its secret; only the chart's migration Job reads it.
#   app    the services' role, username var.db_app_username. Its secret holds
#          username, password, host, port and dbname; the migration Job creates the
#          role with that password and grants it what the services need.
# The chart's ExternalSecrets read both through the ClusterSecretStore below
# (database.externalSecrets.store / appSecret / ownerSecret in the chart's values).
################################################################################

# Encrypts both secrets, Performance Insights and the database's CloudWatch log groups.
resource "aws_kms_key" "database" {
  description             = "${var.name}: database secrets, Performance Insights and logs"
  enable_key_rotation     = true
  deletion_window_in_days = 30

  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        # The account's IAM policies decide who else may use the key (the AWS default).
        Sid       = "AccountAdministersTheKey"
        Effect    = "Allow"
        Principal = { AWS = "arn:${local.partition}:iam::${local.account_id}:root" }
        Action    = "kms:*"
        Resource  = "*"
      },
      {
        Sid       = "CloudWatchLogsEncryptsTheDatabaseLogs"
        Effect    = "Allow"
        Principal = { Service = "logs.${var.region}.amazonaws.com" }
        Action = [
          "kms:Encrypt",
          "kms:Decrypt",
          "kms:ReEncrypt*",
          "kms:GenerateDataKey*",
          "kms:Describe*",
        ]
        Resource = "*"
        Condition = {
          ArnLike = {
            "kms:EncryptionContext:aws:logs:arn" = "arn:${local.partition}:logs:${var.region}:${local.account_id}:log-group:/aws/rds/instance/${var.name}/*"
          }
        }
      },
    ]
  })
}

resource "aws_kms_alias" "database" {
  name          = "alias/${var.name}-database"
  target_key_id = aws_kms_key.database.key_id
}

# Letters and digits only: the password goes into a database URL unescaped.
resource "random_password" "database_app" {
  length  = 40
  special = false
}

resource "aws_secretsmanager_secret" "database_app" {
  #checkov:skip=CKV2_AWS_57:No rotation Lambda: the password is set on the PostgreSQL role by the chart's migration Job (the owner role), not by Secrets Manager. Rotate with `terraform apply -replace=random_password.database_app` followed by a chart upgrade (the Job sets the new password, External Secrets refreshes the Kubernetes Secret).
  name        = "${var.name}/database/app"
  description = "PostgreSQL application role of ${var.name}: username, password, host, port, dbname"
  kms_key_id  = aws_kms_key.database.arn
}

resource "aws_secretsmanager_secret_version" "database_app" {
  secret_id = aws_secretsmanager_secret.database_app.id
  secret_string = jsonencode({
    username = var.db_app_username
    password = random_password.database_app.result
    host     = aws_db_instance.postgres.address
    port     = aws_db_instance.postgres.port
    dbname   = var.db_name
  })
}

################################################################################
# External Secrets Operator, with an IRSA role that may read exactly the two secrets.
################################################################################

locals {
  external_secrets_namespace       = "external-secrets"
  external_secrets_service_account = "external-secrets"
  external_secrets_store           = "tessera-aws-secrets-manager"
}

data "aws_iam_policy_document" "external_secrets" {
  statement {
    sid = "ReadTheDatabaseSecrets"
    actions = [
      "secretsmanager:GetSecretValue",
      "secretsmanager:DescribeSecret",
    ]
    resources = [
      aws_secretsmanager_secret.database_app.arn,
      aws_db_instance.postgres.master_user_secret[0].secret_arn,
    ]
  }

  statement {
    sid       = "DecryptThemThroughSecretsManager"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.database.arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["secretsmanager.${var.region}.amazonaws.com"]
    }
  }
}

module "external_secrets_role" {
  source = "./modules/irsa_role"

  name        = "${var.name}-external-secrets"
  description = "IRSA role of the External Secrets Operator: reads the database secrets"

  oidc_provider_arn = module.eks.oidc_provider_arn
  oidc_provider     = module.eks.oidc_provider
  namespace         = local.external_secrets_namespace
  service_account   = local.external_secrets_service_account

  policy_description = "External Secrets Operator of ${var.name}: the database secrets"
  policy_json        = data.aws_iam_policy_document.external_secrets.json
}

resource "helm_release" "external_secrets" {
  name             = "external-secrets"
  namespace        = local.external_secrets_namespace
  create_namespace = true
  repository       = "https://charts.external-secrets.io"
  chart            = "external-secrets"
  version          = "2.9.0"

  values = [yamlencode({
    installCRDs = true
    serviceAccount = {
      create = true
      name   = local.external_secrets_service_account
      annotations = {
        "eks.amazonaws.com/role-arn" = module.external_secrets_role.role_arn
      }
    }
    # The controller, its webhook and its certificate controller.
    global = {
      nodeSelector = {
        "tessera.io/node-pool" = "system"
      }
    }
  })]

  depends_on = [module.eks, module.external_secrets_role]
}

# The store every ExternalSecret of the chart names. No auth block: the controller's own
# IRSA credentials are used, so the store reaches exactly what that role may read; and
# only ExternalSecrets in the chart's namespace may use it.
resource "kubectl_manifest" "cluster_secret_store" {
  yaml_body = yamlencode({
    apiVersion = "external-secrets.io/v1"
    kind       = "ClusterSecretStore"
    metadata = {
      name = local.external_secrets_store
    }
    spec = {
      provider = {
        aws = {
          service = "SecretsManager"
          region  = var.region
        }
      }
      conditions = [
        { namespaces = [var.kubernetes_namespace] },
      ]
    }
  })

  depends_on = [helm_release.external_secrets]
}
