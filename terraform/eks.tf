################################################################################
# EKS. One small managed node group runs the cluster's own controllers (Karpenter,
# CoreDNS, the AWS Load Balancer Controller, External Secrets, KEDA, metrics-server);
# Karpenter (karpenter.tf) launches the nodes of the workloads: the api, media and gpu
# node pools, which the Helm chart selects by the node label tessera.io/node-pool.
################################################################################

module "eks" {
  #checkov:skip=CKV_TF_1:Registry module pinned by version constraint (~> 21.0); the registry serves tagged releases and .terraform.lock.hcl does not cover modules either way. Switching to a git source pinned to a commit would lose the registry's version resolution; review the module diff on each upgrade instead.
  source  = "terraform-aws-modules/eks/aws"
  version = "~> 21.0"

  name               = var.name
  kubernetes_version = var.kubernetes_version

  endpoint_public_access                   = true
  endpoint_public_access_cidrs             = var.cluster_endpoint_public_access_cidrs
  enable_cluster_creator_admin_permissions = true

  # IRSA: the OIDC provider that the services' and the controllers' roles trust.
  enable_irsa = true

  vpc_id                   = module.vpc.vpc_id
  subnet_ids               = module.vpc.private_subnets
  control_plane_subnet_ids = module.vpc.intra_subnets

  # Karpenter's EC2NodeClasses attach this security group to the nodes they launch, so
  # those nodes reach the database like the managed ones (rds.tf admits this group).
  node_security_group_tags = {
    "karpenter.sh/discovery" = var.name
  }

  addons = {
    coredns    = {}
    kube-proxy = {}
    vpc-cni = {
      before_compute = true
      # The chart's NetworkPolicies are enforced by the VPC CNI's network policy agent;
      # without this they are accepted and ignored.
      configuration_values = jsonencode({ enableNetworkPolicy = "true" })
    }
    # Karpenter's controller gets its AWS credentials by EKS Pod Identity.
    eks-pod-identity-agent = {
      before_compute = true
    }
    # Provisions the chart's gp3 StorageClass volumes (export scratch, NATS JetStream).
    aws-ebs-csi-driver = {
      service_account_role_arn = module.ebs_csi_role.role_arn
    }
  }

  eks_managed_node_groups = {
    # The cluster's controllers. Karpenter must not run on nodes it manages itself, so
    # this group is not Karpenter's; the workloads' pools are (karpenter.tf).
    system = {
      ami_type       = "AL2023_x86_64_STANDARD"
      instance_types = [var.system_node_group.instance_type]
      min_size       = var.system_node_group.min_size
      max_size       = var.system_node_group.max_size
      desired_size   = var.system_node_group.desired_size
      labels = {
        "tessera.io/node-pool" = "system"
      }
      block_device_mappings = {
        xvda = {
          device_name = "/dev/xvda"
          ebs = {
            volume_size           = 50
            volume_type           = "gp3"
            encrypted             = true
            delete_on_termination = true
          }
        }
      }
    }
  }
}

# The EBS CSI driver's controller ServiceAccount assumes this role (IRSA), and only it.
module "ebs_csi_role" {
  source = "./modules/irsa_role"

  name = "${var.name}-ebs-csi"

  oidc_provider_arn = module.eks.oidc_provider_arn
  oidc_provider     = module.eks.oidc_provider
  namespace         = "kube-system"
  service_account   = "ebs-csi-controller-sa"

  create_policy       = false
  managed_policy_arns = ["arn:${local.partition}:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy"]
}
