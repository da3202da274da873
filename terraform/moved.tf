################################################################################
# State addresses of the IRSA roles from before modules/irsa_role: with these, a state
# applied before the module plans no change for the roles, their policies and their
# attachments. (Their trust documents were data sources: nothing to move.) Remove once
# every state has been applied with the module.
#
# Not moved: External Secrets' policy was inline (aws_iam_role_policy) and is now a
# managed policy of the same statements, so Terraform replaces one with the other.
################################################################################

moved {
  from = aws_iam_role.service["ingest"]
  to   = module.service_role["ingest"].aws_iam_role.this
}

moved {
  from = aws_iam_policy.service["ingest"]
  to   = module.service_role["ingest"].aws_iam_policy.this[0]
}

moved {
  from = aws_iam_role_policy_attachment.service["ingest"]
  to   = module.service_role["ingest"].aws_iam_role_policy_attachment.this[0]
}

moved {
  from = aws_iam_role.service["export"]
  to   = module.service_role["export"].aws_iam_role.this
}

moved {
  from = aws_iam_policy.service["export"]
  to   = module.service_role["export"].aws_iam_policy.this[0]
}

moved {
  from = aws_iam_role_policy_attachment.service["export"]
  to   = module.service_role["export"].aws_iam_role_policy_attachment.this[0]
}

moved {
  from = aws_iam_role.service["triton"]
  to   = module.service_role["triton"].aws_iam_role.this
}

moved {
  from = aws_iam_policy.service["triton"]
  to   = module.service_role["triton"].aws_iam_policy.this[0]
}

moved {
  from = aws_iam_role_policy_attachment.service["triton"]
  to   = module.service_role["triton"].aws_iam_role_policy_attachment.this[0]
}

moved {
  from = aws_iam_role.external_secrets
  to   = module.external_secrets_role.aws_iam_role.this
}

moved {
  from = aws_iam_role.load_balancer_controller
  to   = module.load_balancer_controller_role.aws_iam_role.this
}

moved {
  from = aws_iam_policy.load_balancer_controller
  to   = module.load_balancer_controller_role.aws_iam_policy.this[0]
}

moved {
  from = aws_iam_role_policy_attachment.load_balancer_controller
  to   = module.load_balancer_controller_role.aws_iam_role_policy_attachment.this[0]
}

moved {
  from = aws_iam_role.ebs_csi
  to   = module.ebs_csi_role.aws_iam_role.this
}

moved {
  from = aws_iam_role_policy_attachment.ebs_csi
  to   = module.ebs_csi_role.aws_iam_role_policy_attachment.managed[0]
}
