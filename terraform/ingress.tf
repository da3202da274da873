################################################################################
# Ingress: the AWS Load Balancer Controller turns the chart's Ingress (class alb) into
# an Application Load Balancer in the public subnets (tagged kubernetes.io/role/elb in
# main.tf), terminating TLS with the ACM certificate below.
################################################################################

locals {
  load_balancer_controller_service_account = "aws-load-balancer-controller"

  # ARN prefixes of this account and region.
  ec2_arn = "arn:${local.partition}:ec2:${var.region}:${local.account_id}"
  elb_arn = "arn:${local.partition}:elasticloadbalancing:${var.region}:${local.account_id}"
}

# What the controller needs to manage ALBs and NLBs, their listeners, rules and target
# groups, and their security groups, written from the controller's documented needs:
# - what it creates carries the tag elbv2.k8s.aws/cluster, and it may change or delete
#   only what carries that tag;
# - everything is confined to this account and region, security group rules to this VPC;
# - no WAF, Shield or Cognito actions (the Helm values below turn those features off),
#   nor the Outposts customer-owned address pools' or IPAM pools' changes (unused).
data "aws_iam_policy_document" "load_balancer_controller" {
  statement {
    sid       = "CreateTheElbServiceLinkedRole"
    actions   = ["iam:CreateServiceLinkedRole"]
    resources = ["arn:${local.partition}:iam::${local.account_id}:role/aws-service-role/elasticloadbalancing.amazonaws.com/AWSServiceRoleForElasticLoadBalancing"]

    condition {
      test     = "StringEquals"
      variable = "iam:AWSServiceName"
      values   = ["elasticloadbalancing.amazonaws.com"]
    }
  }

  # Describe and List calls: these actions do not support resource-level permissions.
  statement {
    sid = "Discover"
    actions = [
      "ec2:DescribeAccountAttributes",
      "ec2:DescribeAddresses",
      "ec2:DescribeAvailabilityZones",
      "ec2:DescribeInternetGateways",
      "ec2:DescribeVpcs",
      "ec2:DescribeVpcPeeringConnections",
      "ec2:DescribeSubnets",
      "ec2:DescribeSecurityGroups",
      "ec2:DescribeInstances",
      "ec2:DescribeNetworkInterfaces",
      "ec2:DescribeTags",
      "ec2:DescribeRouteTables",
      "ec2:DescribeIpamPools",
      "elasticloadbalancing:DescribeLoadBalancers",
      "elasticloadbalancing:DescribeLoadBalancerAttributes",
      "elasticloadbalancing:DescribeListeners",
      "elasticloadbalancing:DescribeListenerAttributes",
      "elasticloadbalancing:DescribeListenerCertificates",
      "elasticloadbalancing:DescribeSSLPolicies",
      "elasticloadbalancing:DescribeRules",
      "elasticloadbalancing:DescribeTargetGroups",
      "elasticloadbalancing:DescribeTargetGroupAttributes",
      "elasticloadbalancing:DescribeTargetHealth",
      "elasticloadbalancing:DescribeTags",
      "elasticloadbalancing:DescribeTrustStores",
      "elasticloadbalancing:DescribeCapacityReservation",
      "acm:ListCertificates",
    ]
    resources = ["*"]
  }

  statement {
    sid       = "ReadTheVpcsSecurityGroups"
    actions   = ["ec2:GetSecurityGroupsForVpc"]
    resources = ["${local.ec2_arn}:vpc/${module.vpc.vpc_id}"]
  }

  statement {
    sid       = "ReadCertificates"
    actions   = ["acm:DescribeCertificate"]
    resources = ["arn:${local.partition}:acm:${var.region}:${local.account_id}:certificate/*"]
  }

  statement {
    sid     = "CreateSecurityGroupsInTheVpc"
    actions = ["ec2:CreateSecurityGroup"]
    resources = [
      "${local.ec2_arn}:security-group/*",
      "${local.ec2_arn}:vpc/${module.vpc.vpc_id}",
    ]
  }

  statement {
    sid       = "TagSecurityGroupsItCreates"
    actions   = ["ec2:CreateTags"]
    resources = ["${local.ec2_arn}:security-group/*"]

    condition {
      test     = "StringEquals"
      variable = "ec2:CreateAction"
      values   = ["CreateSecurityGroup"]
    }

    condition {
      test     = "Null"
      variable = "aws:RequestTag/elbv2.k8s.aws/cluster"
      values   = ["false"]
    }
  }

  statement {
    sid = "RetagItsSecurityGroups"
    actions = [
      "ec2:CreateTags",
      "ec2:DeleteTags",
    ]
    resources = ["${local.ec2_arn}:security-group/*"]

    condition {
      test     = "Null"
      variable = "aws:RequestTag/elbv2.k8s.aws/cluster"
      values   = ["true"]
    }

    condition {
      test     = "Null"
      variable = "aws:ResourceTag/elbv2.k8s.aws/cluster"
      values   = ["false"]
    }
  }

  statement {
    sid       = "DeleteItsSecurityGroups"
    actions   = ["ec2:DeleteSecurityGroup"]
    resources = ["${local.ec2_arn}:security-group/*"]

    condition {
      test     = "Null"
      variable = "aws:ResourceTag/elbv2.k8s.aws/cluster"
      values   = ["false"]
    }
  }

  # Rules on its own security groups and on the nodes' (traffic from the load balancer
  # to the pods), which it does not own: confined to the VPC instead.
  statement {
    sid = "ManageSecurityGroupRulesInTheVpc"
    actions = [
      "ec2:AuthorizeSecurityGroupIngress",
      "ec2:RevokeSecurityGroupIngress",
    ]
    resources = ["${local.ec2_arn}:security-group/*"]

    condition {
      test     = "ArnEquals"
      variable = "ec2:Vpc"
      values   = ["${local.ec2_arn}:vpc/${module.vpc.vpc_id}"]
    }
  }

  statement {
    sid = "CreateTaggedLoadBalancers"
    actions = [
      "elasticloadbalancing:CreateLoadBalancer",
      "elasticloadbalancing:CreateTargetGroup",
    ]
    resources = [
      "${local.elb_arn}:loadbalancer/app/*/*",
      "${local.elb_arn}:loadbalancer/net/*/*",
      "${local.elb_arn}:targetgroup/*/*",
    ]

    condition {
      test     = "Null"
      variable = "aws:RequestTag/elbv2.k8s.aws/cluster"
      values   = ["false"]
    }
  }

  statement {
    sid     = "TagLoadBalancersItCreates"
    actions = ["elasticloadbalancing:AddTags"]
    resources = [
      "${local.elb_arn}:loadbalancer/app/*/*",
      "${local.elb_arn}:loadbalancer/net/*/*",
      "${local.elb_arn}:targetgroup/*/*",
    ]

    condition {
      test     = "StringEquals"
      variable = "elasticloadbalancing:CreateAction"
      values   = ["CreateLoadBalancer", "CreateTargetGroup"]
    }

    condition {
      test     = "Null"
      variable = "aws:RequestTag/elbv2.k8s.aws/cluster"
      values   = ["false"]
    }
  }

  statement {
    sid = "RetagItsLoadBalancers"
    actions = [
      "elasticloadbalancing:AddTags",
      "elasticloadbalancing:RemoveTags",
    ]
    resources = [
      "${local.elb_arn}:loadbalancer/app/*/*",
      "${local.elb_arn}:loadbalancer/net/*/*",
      "${local.elb_arn}:targetgroup/*/*",
    ]

    condition {
      test     = "Null"
      variable = "aws:RequestTag/elbv2.k8s.aws/cluster"
      values   = ["true"]
    }

    condition {
      test     = "Null"
      variable = "aws:ResourceTag/elbv2.k8s.aws/cluster"
      values   = ["false"]
    }
  }

  statement {
    sid = "ChangeItsLoadBalancers"
    actions = [
      "elasticloadbalancing:ModifyLoadBalancerAttributes",
      "elasticloadbalancing:SetIpAddressType",
      "elasticloadbalancing:SetSecurityGroups",
      "elasticloadbalancing:SetSubnets",
      "elasticloadbalancing:DeleteLoadBalancer",
      "elasticloadbalancing:ModifyCapacityReservation",
      "elasticloadbalancing:ModifyTargetGroup",
      "elasticloadbalancing:ModifyTargetGroupAttributes",
      "elasticloadbalancing:DeleteTargetGroup",
      "elasticloadbalancing:ModifyListenerAttributes",
    ]
    resources = [
      "${local.elb_arn}:loadbalancer/app/*/*",
      "${local.elb_arn}:loadbalancer/net/*/*",
      "${local.elb_arn}:targetgroup/*/*",
      "${local.elb_arn}:listener/app/*/*/*",
      "${local.elb_arn}:listener/net/*/*/*",
    ]

    condition {
      test     = "Null"
      variable = "aws:ResourceTag/elbv2.k8s.aws/cluster"
      values   = ["false"]
    }
  }

  # Listeners and rules: confined to the account and region's load balancers.
  statement {
    sid = "ManageListenersAndRules"
    actions = [
      "elasticloadbalancing:CreateListener",
      "elasticloadbalancing:DeleteListener",
      "elasticloadbalancing:ModifyListener",
      "elasticloadbalancing:AddListenerCertificates",
      "elasticloadbalancing:RemoveListenerCertificates",
      "elasticloadbalancing:CreateRule",
      "elasticloadbalancing:DeleteRule",
      "elasticloadbalancing:ModifyRule",
      "elasticloadbalancing:SetRulePriorities",
    ]
    resources = [
      "${local.elb_arn}:loadbalancer/app/*/*",
      "${local.elb_arn}:loadbalancer/net/*/*",
      "${local.elb_arn}:listener/app/*/*/*",
      "${local.elb_arn}:listener/net/*/*/*",
      "${local.elb_arn}:listener-rule/app/*/*/*/*",
      "${local.elb_arn}:listener-rule/net/*/*/*/*",
    ]
  }

  statement {
    sid = "TagListenersAndRules"
    actions = [
      "elasticloadbalancing:AddTags",
      "elasticloadbalancing:RemoveTags",
    ]
    resources = [
      "${local.elb_arn}:listener/app/*/*/*",
      "${local.elb_arn}:listener/net/*/*/*",
      "${local.elb_arn}:listener-rule/app/*/*/*/*",
      "${local.elb_arn}:listener-rule/net/*/*/*/*",
    ]
  }

  statement {
    sid = "RegisterTargets"
    actions = [
      "elasticloadbalancing:RegisterTargets",
      "elasticloadbalancing:DeregisterTargets",
    ]
    resources = ["${local.elb_arn}:targetgroup/*/*"]
  }
}

module "load_balancer_controller_role" {
  source = "./modules/irsa_role"

  name        = "${var.name}-load-balancer-controller"
  description = "IRSA role of the AWS Load Balancer Controller"

  oidc_provider_arn = module.eks.oidc_provider_arn
  oidc_provider     = module.eks.oidc_provider
  namespace         = "kube-system"
  service_account   = local.load_balancer_controller_service_account

  policy_description = "AWS Load Balancer Controller of ${var.name}"
  policy_json        = data.aws_iam_policy_document.load_balancer_controller.json
}

resource "helm_release" "load_balancer_controller" {
  name       = "aws-load-balancer-controller"
  namespace  = "kube-system"
  repository = "https://aws.github.io/eks-charts"
  chart      = "aws-load-balancer-controller"
  version    = "3.5.0"

  values = [yamlencode({
    clusterName = module.eks.cluster_name
    # Given, not discovered: IMDS is out of reach of pods (hop limit 1).
    region = var.region
    vpcId  = module.vpc.vpc_id
    serviceAccount = {
      create = true
      name   = local.load_balancer_controller_service_account
      annotations = {
        "eks.amazonaws.com/role-arn" = module.load_balancer_controller_role.role_arn
      }
    }
    # The IngressClass "alb" that the chart's Ingress names.
    ingressClass               = "alb"
    createIngressClassResource = true
    # Features whose permissions the policy above leaves out.
    enableShield = false
    enableWaf    = false
    enableWafv2  = false
    nodeSelector = {
      "tessera.io/node-pool" = "system"
    }
  })]

  depends_on = [module.eks, module.load_balancer_controller_role]
}

################################################################################
# The TLS certificate of domain_name, validated by DNS: in route53_zone_id when given,
# else by the records in the output acm_validation_records, to be created wherever the
# domain's zone is.
################################################################################

resource "aws_acm_certificate" "ingress" {
  domain_name               = var.domain_name
  subject_alternative_names = var.subject_alternative_names
  validation_method         = "DNS"

  options {
    certificate_transparency_logging_preference = "ENABLED"
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_route53_record" "certificate_validation" {
  for_each = var.route53_zone_id == null ? {} : {
    for option in aws_acm_certificate.ingress.domain_validation_options :
    option.domain_name => option
  }

  zone_id         = var.route53_zone_id
  name            = each.value.resource_record_name
  type            = each.value.resource_record_type
  records         = [each.value.resource_record_value]
  ttl             = 300
  allow_overwrite = true
}

resource "aws_acm_certificate_validation" "ingress" {
  count = var.route53_zone_id == null ? 0 : 1

  certificate_arn         = aws_acm_certificate.ingress.arn
  validation_record_fqdns = [for record in aws_route53_record.certificate_validation : record.fqdn]
}

locals {
  # With Route 53 validation, the ARN only once the certificate is issued, so that the
  # chart's Ingress never names a certificate still pending.
  certificate_arn = var.route53_zone_id == null ? aws_acm_certificate.ingress.arn : one(aws_acm_certificate_validation.ingress[*].certificate_arn)
}
