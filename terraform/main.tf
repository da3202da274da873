data "aws_availability_zones" "available" {
  # Regular zones only: local zones and wavelength zones lack the instance types.
  filter {
    name   = "opt-in-status"
    values = ["opt-in-not-required"]
  }

  # A closed list of zone names, so that a zone AWS adds later never moves the subnets.
  filter {
    name   = "zone-name"
    values = length(var.availability_zones) > 0 ? var.availability_zones : [for letter in ["a", "b", "c", "d"] : "${var.region}${letter}"]
  }

  lifecycle {
    postcondition {
      condition     = length(self.names) >= var.availability_zone_count
      error_message = "Fewer usable availability zones than availability_zone_count: set availability_zones to the region's zone names."
    }
  }
}

data "aws_partition" "current" {}

data "aws_caller_identity" "current" {}

locals {
  azs = slice(data.aws_availability_zones.available.names, 0, var.availability_zone_count)

  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition

  tags = merge(var.tags, {
    Project     = "tessera"
    Deployment  = var.name
    Environment = var.environment
    ManagedBy   = "terraform"
  })
}

################################################################################
# VPC: private subnets for the nodes, public ones for the load balancer, intra ones
# for the EKS control plane's network interfaces, database ones for RDS.
################################################################################

module "vpc" {
  #checkov:skip=CKV_TF_1:Registry module pinned by version constraint (~> 6.0); the registry serves tagged releases and .terraform.lock.hcl does not cover modules either way. Switching to a git source pinned to a commit would lose the registry's version resolution; review the module diff on each upgrade instead.
  source  = "terraform-aws-modules/vpc/aws"
  version = "~> 6.0"

  name = var.name
  cidr = var.vpc_cidr
  azs  = local.azs

  private_subnets  = [for index, _ in local.azs : cidrsubnet(var.vpc_cidr, 4, index)]
  public_subnets   = [for index, _ in local.azs : cidrsubnet(var.vpc_cidr, 8, index + 64)]
  intra_subnets    = [for index, _ in local.azs : cidrsubnet(var.vpc_cidr, 8, index + 80)]
  database_subnets = [for index, _ in local.azs : cidrsubnet(var.vpc_cidr, 8, index + 96)]

  create_database_subnet_group = true

  enable_nat_gateway     = true
  single_nat_gateway     = var.single_nat_gateway
  one_nat_gateway_per_az = !var.single_nat_gateway

  enable_dns_hostnames = true
  enable_dns_support   = true

  # ALB discovery by the AWS Load Balancer Controller: internet-facing load balancers go
  # into the public subnets, internal ones into the private subnets.
  public_subnet_tags = {
    "kubernetes.io/role/elb" = 1
  }

  # Karpenter's EC2NodeClasses launch nodes into the subnets with this tag.
  private_subnet_tags = {
    "kubernetes.io/role/internal-elb" = 1
    "karpenter.sh/discovery"          = var.name
  }
}

# S3 traffic from the nodes stays inside AWS instead of crossing the NAT gateways.
resource "aws_vpc_endpoint" "s3" {
  vpc_id            = module.vpc.vpc_id
  service_name      = "com.amazonaws.${var.region}.s3"
  vpc_endpoint_type = "Gateway"
  route_table_ids   = module.vpc.private_route_table_ids
}
