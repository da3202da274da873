################################################################################
# Karpenter: launches and retires the workloads' nodes. Its AWS side (controller role
# with EKS Pod Identity, node role and its EKS access entry, the SQS queue and the
# EventBridge rules of interruption handling) comes from the EKS module's karpenter
# submodule; the controller from its Helm charts; the node pools below.
#
# The pools match the workloads' node profiles. The chart's nodePools select them by the
# node label tessera.io/node-pool:
#   api    c5.xlarge    gateway, annotations, inference, NATS
#   media  c5.2xlarge   ingest, export
#   gpu    g4dn.xlarge  Triton; tainted nvidia.com/gpu=true:NoSchedule
# A NodePool has no minimum: a pool with no pending pod has no node (the gpu pool
# starts at zero), and `limits` caps what one pool may launch.
################################################################################

locals {
  # Everything the NodePool and EC2NodeClass manifests below vary by pool. cpu and
  # memory limits are max nodes times the instance type's vCPUs and GiB.
  karpenter_node_pools = {
    api = {
      instance_types       = ["c5.xlarge"]
      volume_size          = "50Gi"
      taints               = []
      consolidation_policy = "WhenEmptyOrUnderutilized"
      limits = {
        cpu    = 4 * var.node_pool_max_nodes["api"]
        memory = "${8 * var.node_pool_max_nodes["api"]}Gi"
      }
    }
    media = {
      instance_types       = ["c5.2xlarge"]
      volume_size          = "100Gi"
      taints               = []
      consolidation_policy = "WhenEmptyOrUnderutilized"
      limits = {
        cpu    = 8 * var.node_pool_max_nodes["media"]
        memory = "${16 * var.node_pool_max_nodes["media"]}Gi"
      }
    }
    # The Triton image is about 15 GB unpacked, hence the larger root volume. Only empty
    # GPU nodes are consolidated: moving Triton means reloading every model.
    gpu = {
      instance_types       = ["g4dn.xlarge"]
      volume_size          = "150Gi"
      consolidation_policy = "WhenEmpty"
      taints = [
        {
          key    = "nvidia.com/gpu"
          value  = "true"
          effect = "NoSchedule"
        },
      ]
      limits = {
        cpu              = 4 * var.node_pool_max_nodes["gpu"]
        memory           = "${16 * var.node_pool_max_nodes["gpu"]}Gi"
        "nvidia.com/gpu" = var.node_pool_max_nodes["gpu"]
      }
    }
  }
}

module "karpenter" {
  #checkov:skip=CKV_TF_1:Registry module pinned by version constraint (~> 21.0, the same release as module.eks); the registry serves tagged releases and .terraform.lock.hcl does not cover modules either way. Review the module diff on each upgrade instead.
  source  = "terraform-aws-modules/eks/aws//modules/karpenter"
  version = "~> 21.0"

  cluster_name = module.eks.cluster_name

  # The controller's role is bound by Pod Identity to exactly this ServiceAccount.
  namespace                       = "kube-system"
  service_account                 = "karpenter"
  create_pod_identity_association = true

  iam_role_name            = "${var.name}-karpenter"
  iam_role_use_name_prefix = false

  # The nodes' role: the EKS worker, CNI and ECR pull policies. Karpenter derives the
  # instance profile from it (EC2NodeClass spec.role).
  node_iam_role_name            = "${var.name}-karpenter-node"
  node_iam_role_use_name_prefix = false

  # The SQS queue and EventBridge rules that warn of spot interruptions, scheduled
  # maintenance and instance state changes.
  enable_spot_termination = true
  queue_name              = "${var.name}-karpenter"
}

# The CRDs in a chart of their own, so that a Helm upgrade updates them too (Helm never
# upgrades the crds/ directory of a chart).
resource "helm_release" "karpenter_crd" {
  name       = "karpenter-crd"
  namespace  = "kube-system"
  repository = "oci://public.ecr.aws/karpenter"
  chart      = "karpenter-crd"
  version    = "1.14.1"

  depends_on = [module.eks]
}

resource "helm_release" "karpenter" {
  name       = "karpenter"
  namespace  = "kube-system"
  repository = "oci://public.ecr.aws/karpenter"
  chart      = "karpenter"
  version    = "1.14.1"
  skip_crds  = true

  values = [yamlencode({
    serviceAccount = {
      name = module.karpenter.service_account
    }
    # On the managed system nodes: never on a node Karpenter could take away.
    nodeSelector = {
      "tessera.io/node-pool" = "system"
    }
    controller = {
      resources = {
        requests = { cpu = "500m", memory = "512Mi" }
        limits   = { memory = "1Gi" }
      }
    }
    settings = {
      clusterName       = module.eks.cluster_name
      clusterEndpoint   = module.eks.cluster_endpoint
      interruptionQueue = module.karpenter.queue_name
    }
  })]

  depends_on = [module.eks, module.karpenter, helm_release.karpenter_crd]
}

# One EC2NodeClass per pool: the pools differ in root volume size, and the gpu pool's
# AMI is the NVIDIA variant that the al2023 alias resolves for GPU instance types.
resource "kubectl_manifest" "karpenter_node_class" {
  for_each = local.karpenter_node_pools

  yaml_body = yamlencode({
    apiVersion = "karpenter.k8s.aws/v1"
    kind       = "EC2NodeClass"
    metadata = {
      name = each.key
    }
    spec = {
      role             = module.karpenter.node_iam_role_name
      amiSelectorTerms = [{ alias = var.karpenter_ami_alias }]
      subnetSelectorTerms = [
        { tags = { "karpenter.sh/discovery" = var.name } },
      ]
      securityGroupSelectorTerms = [
        { tags = { "karpenter.sh/discovery" = var.name } },
      ]
      # IMDSv2 only, and out of reach of pods that are not on the host network: pods get
      # AWS credentials from IRSA, never from the node's role.
      metadataOptions = {
        httpEndpoint            = "enabled"
        httpProtocolIPv6        = "disabled"
        httpPutResponseHopLimit = 1
        httpTokens              = "required"
      }
      blockDeviceMappings = [
        {
          deviceName = "/dev/xvda"
          ebs = {
            volumeSize          = each.value.volume_size
            volumeType          = "gp3"
            encrypted           = true
            deleteOnTermination = true
          }
        },
      ]
      tags = merge(local.tags, {
        "tessera.io/node-pool" = each.key
      })
    }
  })

  depends_on = [helm_release.karpenter_crd]
}

resource "kubectl_manifest" "karpenter_node_pool" {
  for_each = local.karpenter_node_pools

  yaml_body = yamlencode({
    apiVersion = "karpenter.sh/v1"
    kind       = "NodePool"
    metadata = {
      name = each.key
    }
    spec = {
      template = {
        metadata = {
          labels = {
            "tessera.io/node-pool" = each.key
          }
        }
        spec = {
          nodeClassRef = {
            group = "karpenter.k8s.aws"
            kind  = "EC2NodeClass"
            name  = kubectl_manifest.karpenter_node_class[each.key].name
          }
          requirements = [
            {
              key      = "node.kubernetes.io/instance-type"
              operator = "In"
              values   = each.value.instance_types
            },
            {
              key      = "karpenter.sh/capacity-type"
              operator = "In"
              values   = ["on-demand"]
            },
            {
              key      = "kubernetes.io/arch"
              operator = "In"
              values   = ["amd64"]
            },
            {
              key      = "kubernetes.io/os"
              operator = "In"
              values   = ["linux"]
            },
          ]
          taints = each.value.taints
          # Nodes are replaced after 30 days, so that they pick up new AMIs.
          expireAfter = "720h"
        }
      }
      limits = each.value.limits
      disruption = {
        consolidationPolicy = each.value.consolidation_policy
        consolidateAfter    = "5m"
        # At most one node of the pool is taken away at a time.
        budgets = [{ nodes = "1" }]
      }
    }
  })

  depends_on = [helm_release.karpenter]
}
