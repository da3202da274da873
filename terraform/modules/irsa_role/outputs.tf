output "role_arn" {
  description = "ARN of the role (the ServiceAccount's eks.amazonaws.com/role-arn annotation)."
  value       = aws_iam_role.this.arn
}

output "role_name" {
  description = "Name of the role."
  value       = aws_iam_role.this.name
}

output "policy_arn" {
  description = "ARN of the policy created from policy_json (null when create_policy is false)."
  value       = one(aws_iam_policy.this[*].arn)
}
