variable "region" {
  description = "AWS region of the cluster, the bucket and the database."
  type        = string
  default     = "eu-west-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]+$", var.region))
    error_message = "region must be an AWS region name such as eu-west-1."
  }
}

variable "name" {
  description = "Name of the deployment: prefix of the cluster, database, IAM and ECR names."
  type        = string
  default     = "tessera"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}[a-z0-9]$", var.name))
    error_message = "name must be 3-32 characters of lowercase letters, digits and hyphens, starting with a letter."
  }
}

variable "environment" {
  description = "Environment tag (for example prod or staging) put on every resource."
  type        = string
  default     = "prod"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]*$", var.environment))
    error_message = "environment must be lowercase letters, digits and hyphens."
  }
}

variable "tags" {
  description = "Extra tags put on every resource."
  type        = map(string)
  default     = {}
}

variable "kubernetes_version" {
  description = "Kubernetes version of the EKS control plane and node groups."
  type        = string
  default     = "1.33"

  validation {
    condition     = can(regex("^1\\.[0-9]{2}$", var.kubernetes_version))
    error_message = "kubernetes_version must look like 1.33."
  }
}

variable "vpc_cidr" {
  description = "CIDR block of the VPC; subnets are carved out of it per availability zone."
  type        = string
  default     = "10.0.0.0/16"

  validation {
    condition     = can(cidrhost(var.vpc_cidr, 0)) && tonumber(split("/", var.vpc_cidr)[1]) <= 18
    error_message = "vpc_cidr must be an IPv4 CIDR block of /18 or larger."
  }
}

variable "availability_zone_count" {
  description = "Number of availability zones the VPC, the node groups and the database span."
  type        = number
  default     = 3

  validation {
    condition     = var.availability_zone_count >= 2 && var.availability_zone_count <= 4
    error_message = "availability_zone_count must be between 2 and 4 (RDS and EKS need at least 2)."
  }
}

variable "single_nat_gateway" {
  description = "One NAT gateway for the whole VPC (cheaper) instead of one per availability zone (survives a zone outage)."
  type        = bool
  default     = false
}

variable "cluster_endpoint_public_access_cidrs" {
  description = "CIDR blocks allowed to reach the public Kubernetes API endpoint."
  type        = list(string)

  validation {
    condition     = length(var.cluster_endpoint_public_access_cidrs) > 0 && alltrue([for cidr in var.cluster_endpoint_public_access_cidrs : can(cidrhost(cidr, 0))])
    error_message = "cluster_endpoint_public_access_cidrs must be a non-empty list of IPv4 CIDR blocks."
  }
}

variable "node_group_sizes" {
  description = "Minimum, maximum and desired node counts of the api (c5.xlarge), media (c5.2xlarge) and gpu (g4dn.xlarge) node groups."
  type = map(object({
    min_size     = number
    max_size     = number
    desired_size = number
  }))
  default = {
    api   = { min_size = 3, max_size = 8, desired_size = 3 }
    media = { min_size = 2, max_size = 10, desired_size = 2 }
    gpu   = { min_size = 1, max_size = 4, desired_size = 1 }
  }

  validation {
    condition     = toset(keys(var.node_group_sizes)) == toset(["api", "media", "gpu"])
    error_message = "node_group_sizes must have exactly the keys api, media and gpu."
  }

  validation {
    condition     = alltrue([for size in values(var.node_group_sizes) : size.min_size >= 0 && size.min_size <= size.desired_size && size.desired_size <= size.max_size && size.max_size >= 1])
    error_message = "Each node group needs 0 <= min_size <= desired_size <= max_size and max_size >= 1."
  }
}

variable "bucket_name" {
  description = "Name of the S3 bucket for media, chunks, exports and Triton's model repository (globally unique)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.bucket_name)) && !can(regex("\\.\\.", var.bucket_name))
    error_message = "bucket_name must be a valid S3 bucket name: 3-63 lowercase letters, digits, dots and hyphens."
  }
}

variable "kubernetes_namespace" {
  description = "Namespace the Helm chart is installed into (the IRSA role trusts its ServiceAccount there)."
  type        = string
  default     = "tessera"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", var.kubernetes_namespace)) && length(var.kubernetes_namespace) <= 63
    error_message = "kubernetes_namespace must be a valid Kubernetes namespace name."
  }
}

variable "service_account_name" {
  description = "Name of the chart's ServiceAccount (the chart's default is the release's full name: \"tessera\" for a release named tessera)."
  type        = string
  default     = "tessera"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", var.service_account_name))
    error_message = "service_account_name must be a valid Kubernetes object name."
  }
}

variable "db_engine_version" {
  description = "PostgreSQL major version of the RDS instance (minor versions are upgraded automatically)."
  type        = string
  default     = "17"

  validation {
    condition     = can(regex("^1[6-9]$", var.db_engine_version))
    error_message = "db_engine_version must be a PostgreSQL major version from 16 on."
  }
}

variable "db_instance_class" {
  description = "RDS instance class of the PostgreSQL database."
  type        = string
  default     = "db.m7g.large"

  validation {
    condition     = startswith(var.db_instance_class, "db.")
    error_message = "db_instance_class must be an RDS instance class such as db.m7g.large."
  }
}

variable "db_allocated_storage" {
  description = "Initial gp3 storage of the database, in GiB."
  type        = number
  default     = 100

  validation {
    condition     = var.db_allocated_storage >= 20 && var.db_allocated_storage <= 65536
    error_message = "db_allocated_storage must be between 20 and 65536 GiB."
  }
}

variable "db_max_allocated_storage" {
  description = "Ceiling of storage autoscaling of the database, in GiB (must exceed db_allocated_storage)."
  type        = number
  default     = 1000

  validation {
    condition     = var.db_max_allocated_storage <= 65536
    error_message = "db_max_allocated_storage must be at most 65536 GiB."
  }
}

variable "db_multi_az" {
  description = "Run the database with a synchronous standby in another availability zone."
  type        = bool
  default     = true
}

variable "db_backup_retention_days" {
  description = "Days of automated database backups (point-in-time recovery window)."
  type        = number
  default     = 14

  validation {
    condition     = var.db_backup_retention_days >= 1 && var.db_backup_retention_days <= 35
    error_message = "db_backup_retention_days must be between 1 and 35."
  }
}

variable "db_deletion_protection" {
  description = "Refuse to delete the database (turn off before a deliberate terraform destroy)."
  type        = bool
  default     = true
}
