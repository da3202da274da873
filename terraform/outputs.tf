# What two outputs each give: on their own and in chart_values.
locals {
  service_role_arns = { for service, role in module.service_role : service => role.role_arn }
  # The registry's host (<account>.dkr.ecr.<region>.amazonaws.com) and the repositories'
  # common prefix.
  image_repository = "${split("/", aws_ecr_repository.images["gateway"].repository_url)[0]}/${var.name}"
}

output "region" {
  description = "AWS region of the deployment (the chart's s3.region)."
  value       = var.region
}

output "cluster_name" {
  description = "Name of the EKS cluster (aws eks update-kubeconfig --name ...)."
  value       = module.eks.cluster_name
}

output "cluster_endpoint" {
  description = "URL of the Kubernetes API."
  value       = module.eks.cluster_endpoint
}

output "oidc_provider_arn" {
  description = "ARN of the cluster's OIDC provider (for further IRSA roles)."
  value       = module.eks.oidc_provider_arn
}

output "bucket_name" {
  description = "Name of the services' S3 bucket (the chart's s3.bucket)."
  value       = aws_s3_bucket.data.id
}

output "bucket_prefixes" {
  description = "Key prefixes of the bucket: media (ingest), export (archives), export_uploads, model (Triton's repository; the chart's triton.modelRepositoryPrefix is it without the trailing /)."
  value = {
    media          = var.media_prefix
    export         = var.export_prefix
    export_uploads = var.export_upload_prefixes
    model          = var.model_prefix
  }
}

output "service_role_arns" {
  description = "ARN of the IRSA role of each process that calls S3, by service: ingest, export, triton (the chart's serviceAccounts.<service>.roleArn). annotations, gateway and inference have none."
  value       = local.service_role_arns
}

output "service_account_names" {
  description = "ServiceAccount each IRSA role trusts, in kubernetes_namespace, by service (must match what the chart names them)."
  value       = local.service_accounts
}

output "service_policy_arns" {
  description = "ARN of each service's S3 policy, by service; attach one to an IAM user where static keys are needed instead of IRSA."
  value       = { for service, role in module.service_role : service => role.policy_arn }
}

output "database_endpoint" {
  description = "Host name and port of the PostgreSQL instance."
  value       = aws_db_instance.postgres.endpoint
}

output "database_name" {
  description = "Name of the PostgreSQL database."
  value       = aws_db_instance.postgres.db_name
}

output "database_app_secret_name" {
  description = "Name of the Secrets Manager secret of the application role, JSON keys username, password, host, port, dbname (the chart's database.externalSecrets.appSecret)."
  value       = aws_secretsmanager_secret.database_app.name
}

output "database_owner_secret_arn" {
  description = "ARN of RDS's managed secret of the master (owner) role, JSON keys username, password; only the migration Job uses it (the chart's database.externalSecrets.ownerSecret)."
  value       = aws_db_instance.postgres.master_user_secret[0].secret_arn
}

output "external_secrets_store" {
  description = "Name of the ClusterSecretStore over Secrets Manager (the chart's database.externalSecrets.store)."
  value       = local.external_secrets_store
}

output "acm_certificate_arn" {
  description = "ARN of the ACM certificate of domain_name (the chart's ingress.alb.certificateArn). Without route53_zone_id it is usable once the records of acm_validation_records exist."
  value       = local.certificate_arn
}

output "acm_validation_records" {
  description = "DNS records that validate the certificate: create them in the domain's zone when route53_zone_id is not set (Terraform created them otherwise)."
  value = [
    for option in aws_acm_certificate.ingress.domain_validation_options : {
      name  = option.resource_record_name
      type  = option.resource_record_type
      value = option.resource_record_value
    }
  ]
}

output "karpenter_node_pools" {
  description = "Karpenter NodePools by name (the values of the node label tessera.io/node-pool that the chart's nodePools select), with their instance types."
  value       = { for pool, spec in local.karpenter_node_pools : pool => spec.instance_types }
}

output "karpenter_node_role_name" {
  description = "IAM role of the nodes Karpenter launches."
  value       = module.karpenter.node_iam_role_name
}

output "image_repository" {
  description = "Prefix of the image repositories (the chart's image.repository): <prefix>-<service>."
  value       = local.image_repository
}

output "ecr_repository_urls" {
  description = "URL of each service's ECR repository."
  value       = { for service, repository in aws_ecr_repository.images : service => repository.repository_url }
}

# The chart's values that come from this configuration, for `terraform output -json
# chart_values > terraform-values.json` and `helm ... -f terraform-values.json`.
output "chart_values" {
  description = "The Helm chart's values that this configuration determines (image, s3, serviceAccounts, database.externalSecrets, ingress, triton)."
  value = {
    image = {
      repository = local.image_repository
    }
    s3 = {
      bucket = aws_s3_bucket.data.id
      region = var.region
    }
    serviceAccounts = {
      for service, arn in local.service_role_arns : service => { roleArn = arn }
    }
    database = {
      externalSecrets = {
        store       = local.external_secrets_store
        appSecret   = aws_secretsmanager_secret.database_app.name
        ownerSecret = aws_db_instance.postgres.master_user_secret[0].secret_arn
      }
    }
    ingress = {
      className = "alb"
      host      = var.domain_name
      alb = {
        certificateArn = local.certificate_arn
      }
    }
    triton = {
      modelRepositoryPrefix = trimsuffix(var.model_prefix, "/")
    }
  }
}
