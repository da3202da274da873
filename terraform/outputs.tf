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

output "s3_policy_arn" {
  description = "ARN of the IAM policy for the bucket; attach it to an IAM user when static keys are needed."
  value       = aws_iam_policy.services_s3.arn
}

output "services_role_arn" {
  description = "ARN of the IRSA role for the chart's ServiceAccount (the chart's serviceAccount.roleArn)."
  value       = aws_iam_role.services.arn
}

output "database_endpoint" {
  description = "Host name and port of the PostgreSQL instance."
  value       = aws_db_instance.postgres.endpoint
}

output "database_master_user_secret_arn" {
  description = "ARN of the Secrets Manager secret holding the database master user's password."
  value       = aws_db_instance.postgres.master_user_secret[0].secret_arn
}

output "image_repository" {
  description = "Prefix of the image repositories (the chart's image.repository): <prefix>-<service>."
  value       = "${split("/", aws_ecr_repository.images["gateway"].repository_url)[0]}/${var.name}"
}

output "ecr_repository_urls" {
  description = "URL of each service's ECR repository."
  value       = { for service, repository in aws_ecr_repository.images : service => repository.repository_url }
}
