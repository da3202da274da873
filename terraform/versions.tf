terraform {
  required_version = ">= 1.5.7"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.28"
    }
    # Used by the EKS module (OIDC thumbprint, add-on timing); pinned here so that every
    # provider of the configuration has a known major version.
    tls = {
      source  = "hashicorp/tls"
      version = "~> 4.0"
    }
    time = {
      source  = "hashicorp/time"
      version = "~> 0.9"
    }
    # The cluster's controllers: Karpenter, KEDA, metrics-server, External Secrets
    # Operator, AWS Load Balancer Controller.
    helm = {
      source  = "hashicorp/helm"
      version = "~> 3.0"
    }
    # Custom resources (Karpenter's NodePools and EC2NodeClasses, the ClusterSecretStore).
    # Unlike hashicorp/kubernetes' kubernetes_manifest, kubectl_manifest does not need
    # the CRDs at plan time, so the controllers and their objects go in one apply.
    kubectl = {
      source  = "alekc/kubectl"
      version = "~> 2.4"
    }
    # The password of the database's application role.
    random = {
      source  = "hashicorp/random"
      version = "~> 3.7"
    }
  }
}

provider "aws" {
  region = var.region

  default_tags {
    tags = local.tags
  }
}

# Both Kubernetes-facing providers authenticate as the identity that runs Terraform
# (the cluster creator has admin rights: enable_cluster_creator_admin_permissions),
# with a token from `aws eks get-token`, so the AWS CLI must be on PATH.
provider "helm" {
  kubernetes = {
    host                   = module.eks.cluster_endpoint
    cluster_ca_certificate = base64decode(module.eks.cluster_certificate_authority_data)
    exec = {
      api_version = "client.authentication.k8s.io/v1beta1"
      command     = "aws"
      args        = ["eks", "get-token", "--cluster-name", module.eks.cluster_name, "--region", var.region]
    }
  }
}

provider "kubectl" {
  host                   = module.eks.cluster_endpoint
  cluster_ca_certificate = base64decode(module.eks.cluster_certificate_authority_data)
  load_config_file       = false
  apply_retry_count      = 5

  exec {
    api_version = "client.authentication.k8s.io/v1beta1"
    command     = "aws"
    args        = ["eks", "get-token", "--cluster-name", module.eks.cluster_name, "--region", var.region]
  }
}
