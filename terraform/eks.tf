################################################################################
# EKS: one managed node group per kind of workload. The Helm chart selects them by the
# node label tessera.io/node-pool.
################################################################################

module "eks" {
  source  = "terraform-aws-modules/eks/aws"
  version = "~> 21.0"

  name               = var.name
  kubernetes_version = var.kubernetes_version

  endpoint_public_access                   = true
  endpoint_public_access_cidrs             = var.cluster_endpoint_public_access_cidrs
  enable_cluster_creator_admin_permissions = true

  # IRSA: the OIDC provider that the services' and the EBS CSI driver's roles trust.
  enable_irsa = true

  vpc_id                   = module.vpc.vpc_id
  subnet_ids               = module.vpc.private_subnets
  control_plane_subnet_ids = module.vpc.intra_subnets

  addons = {
    coredns    = {}
    kube-proxy = {}
    vpc-cni = {
      before_compute = true
    }
    # Provisions the chart's gp3 StorageClass volumes (export scratch, NATS JetStream).
    aws-ebs-csi-driver = {
      service_account_role_arn = aws_iam_role.ebs_csi.arn
    }
  }

  eks_managed_node_groups = {
    # The gateway, annotations, inference (API side) and NATS.
    api = {
      ami_type       = "AL2023_x86_64_STANDARD"
      instance_types = ["c5.xlarge"]
      min_size       = var.node_group_sizes["api"].min_size
      max_size       = var.node_group_sizes["api"].max_size
      desired_size   = var.node_group_sizes["api"].desired_size
      labels = {
        "tessera.io/node-pool" = "api"
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

    # Export and ingest: archive assembly, frame extraction, large media.
    media = {
      ami_type       = "AL2023_x86_64_STANDARD"
      instance_types = ["c5.2xlarge"]
      min_size       = var.node_group_sizes["media"].min_size
      max_size       = var.node_group_sizes["media"].max_size
      desired_size   = var.node_group_sizes["media"].desired_size
      labels = {
        "tessera.io/node-pool" = "media"
      }
      block_device_mappings = {
        xvda = {
          device_name = "/dev/xvda"
          ebs = {
            volume_size           = 100
            volume_type           = "gp3"
            encrypted             = true
            delete_on_termination = true
          }
        }
      }
    }

    # Triton. The taint keeps every pod without the matching toleration off the GPUs.
    gpu = {
      ami_type       = "AL2023_x86_64_NVIDIA"
      instance_types = ["g4dn.xlarge"]
      min_size       = var.node_group_sizes["gpu"].min_size
      max_size       = var.node_group_sizes["gpu"].max_size
      desired_size   = var.node_group_sizes["gpu"].desired_size
      labels = {
        "tessera.io/node-pool" = "gpu"
      }
      taints = {
        gpu = {
          key    = "nvidia.com/gpu"
          value  = "true"
          effect = "NO_SCHEDULE"
        }
      }
      # The Triton image is about 15 GB unpacked.
      block_device_mappings = {
        xvda = {
          device_name = "/dev/xvda"
          ebs = {
            volume_size           = 150
            volume_type           = "gp3"
            encrypted             = true
            delete_on_termination = true
          }
        }
      }
    }
  }
}

# The EBS CSI driver's controller ServiceAccount assumes this role (IRSA).
data "aws_iam_policy_document" "ebs_csi_assume" {
  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]

    principals {
      type        = "Federated"
      identifiers = [module.eks.oidc_provider_arn]
    }

    condition {
      test     = "StringEquals"
      variable = "${module.eks.oidc_provider}:sub"
      values   = ["system:serviceaccount:kube-system:ebs-csi-controller-sa"]
    }

    condition {
      test     = "StringEquals"
      variable = "${module.eks.oidc_provider}:aud"
      values   = ["sts.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "ebs_csi" {
  name               = "${var.name}-ebs-csi"
  assume_role_policy = data.aws_iam_policy_document.ebs_csi_assume.json
}

resource "aws_iam_role_policy_attachment" "ebs_csi" {
  role       = aws_iam_role.ebs_csi.name
  policy_arn = "arn:${data.aws_partition.current.partition}:iam::aws:policy/service-role/AmazonEBSCSIDriverPolicy"
}
