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

variable "availability_zones" {
  description = "Names of the availability zones to choose from (the first availability_zone_count usable ones are taken). Empty: the region's zones a to d."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for zone in var.availability_zones : can(regex("^[a-z]{2}(-[a-z]+)+-[0-9]+[a-z]$", zone))])
    error_message = "availability_zones must be zone names such as eu-west-1a."
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

variable "system_node_group" {
  description = "Instance type and node counts of the managed node group of the cluster's controllers (Karpenter, CoreDNS, load balancer controller, External Secrets, KEDA, metrics-server)."
  type = object({
    instance_type = string
    min_size      = number
    max_size      = number
    desired_size  = number
  })
  default = {
    instance_type = "m6i.large"
    min_size      = 2
    max_size      = 3
    desired_size  = 2
  }

  validation {
    condition     = var.system_node_group.min_size >= 2 && var.system_node_group.min_size <= var.system_node_group.desired_size && var.system_node_group.desired_size <= var.system_node_group.max_size
    error_message = "system_node_group needs 2 <= min_size <= desired_size <= max_size (Karpenter runs two replicas on different nodes)."
  }
}

variable "node_pool_max_nodes" {
  description = "Most nodes Karpenter may run in each pool: api (c5.xlarge), media (c5.2xlarge), gpu (g4dn.xlarge; also the GPU limit). The pools have no minimum."
  type        = map(number)
  default = {
    api   = 8
    media = 10
    gpu   = 4
  }

  validation {
    condition     = toset(keys(var.node_pool_max_nodes)) == toset(["api", "media", "gpu"])
    error_message = "node_pool_max_nodes must have exactly the keys api, media and gpu."
  }

  validation {
    condition     = alltrue([for count in values(var.node_pool_max_nodes) : count >= 1 && floor(count) == count])
    error_message = "Each node pool needs a whole maximum of at least 1."
  }
}

variable "karpenter_ami_alias" {
  description = "EKS-optimized AMI of Karpenter's nodes, as an EC2NodeClass alias: al2023@latest, or pinned, e.g. al2023@v20260801 (recommended in production: nodes then change AMI only when this does)."
  type        = string
  default     = "al2023@latest"

  validation {
    condition     = can(regex("^al2023@(latest|v[0-9]{8})$", var.karpenter_ami_alias))
    error_message = "karpenter_ami_alias must be al2023@latest or al2023@vYYYYMMDD."
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
  description = "Namespace the Helm chart is installed into: the IRSA roles trust its ServiceAccounts there, and only ExternalSecrets there may use the ClusterSecretStore."
  type        = string
  default     = "tessera"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", var.kubernetes_namespace)) && length(var.kubernetes_namespace) <= 63
    error_message = "kubernetes_namespace must be a valid Kubernetes namespace name."
  }
}

variable "helm_release_name" {
  description = "Name of the chart's Helm release. The IRSA roles trust the ServiceAccounts <fullname>-ingest, -export and -triton, where fullname is the release name if it contains \"tessera\", else <release>-tessera (the chart's tessera.fullname)."
  type        = string
  default     = "tessera"

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", var.helm_release_name)) && length(var.helm_release_name) <= 53
    error_message = "helm_release_name must be a valid Helm release name (lowercase letters, digits and hyphens, at most 53 characters)."
  }
}

variable "helm_fullname_override" {
  description = "The chart's fullnameOverride, if the release sets one (empty: none)."
  type        = string
  default     = ""

  validation {
    condition     = var.helm_fullname_override == "" || can(regex("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", var.helm_fullname_override))
    error_message = "helm_fullname_override must be empty or a valid Kubernetes object name."
  }
}

variable "media_prefix" {
  description = "Key prefix of the ingest service's objects: tasks' media, chunks, previews and uploads (tasks/<id>/...)."
  type        = string
  default     = "tasks/"

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9._-]*/$", var.media_prefix))
    error_message = "media_prefix must be one path segment ending in /, such as tasks/."
  }
}

variable "export_prefix" {
  description = "Key prefix of the export service's archives (the service's TESSERA_EXPORT_PREFIX); objects under it expire after export_retention_days."
  type        = string
  default     = "exports/"

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9._-]*/$", var.export_prefix))
    error_message = "export_prefix must be one path segment ending in /, such as exports/."
  }
}

variable "export_upload_prefixes" {
  description = "Further key prefixes the export service writes: uploaded annotation files (imports/), backups being restored (backups/), datasets being imported (datasets/)."
  type        = list(string)
  default     = ["imports/", "backups/", "datasets/"]

  validation {
    condition     = alltrue([for prefix in var.export_upload_prefixes : can(regex("^[a-z0-9][a-z0-9._-]*/$", prefix))])
    error_message = "Each of export_upload_prefixes must be one path segment ending in /."
  }
}

variable "export_retention_days" {
  description = "Days after which objects under export_prefix are deleted by an S3 lifecycle rule (must exceed the export service's TESSERA_EXPORT_LIFETIME_S, a day by default)."
  type        = number
  default     = 7

  validation {
    condition     = var.export_retention_days >= 2 && floor(var.export_retention_days) == var.export_retention_days
    error_message = "export_retention_days must be a whole number of at least 2."
  }
}

variable "model_prefix" {
  description = "Key prefix of Triton's model repository (the chart's triton.modelRepositoryPrefix plus a trailing /); Triton may only read under it."
  type        = string
  default     = "triton-models/"

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9._-]*/$", var.model_prefix))
    error_message = "model_prefix must be one path segment ending in /, such as triton-models/."
  }
}

variable "ingest_source_buckets" {
  description = "Names of other buckets the ingest service may list and read with its own role (task media imported from S3). Empty: none."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for bucket in var.ingest_source_buckets : can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", bucket))])
    error_message = "ingest_source_buckets must be S3 bucket names."
  }
}

variable "domain_name" {
  description = "Host name of the public API (the chart's ingress.host); the ACM certificate is issued for it."
  type        = string

  validation {
    condition     = can(regex("^([a-z0-9]([-a-z0-9]*[a-z0-9])?\\.)+[a-z]{2,}$", var.domain_name))
    error_message = "domain_name must be a lowercase DNS name such as tessera.example.com."
  }
}

variable "subject_alternative_names" {
  description = "Further host names on the ACM certificate."
  type        = list(string)
  default     = []
}

variable "route53_zone_id" {
  description = "Route 53 hosted zone of domain_name, where the certificate's DNS validation records are created. null: create the records of the output acm_validation_records yourself."
  type        = string
  default     = null
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

variable "db_name" {
  description = "Name of the PostgreSQL database."
  type        = string
  default     = "tessera"

  validation {
    condition     = can(regex("^[a-z][a-z0-9_]{0,62}$", var.db_name))
    error_message = "db_name must be a lowercase PostgreSQL identifier."
  }
}

variable "db_app_username" {
  description = "PostgreSQL role of the services (the app secret's username); the chart's migration Job creates it."
  type        = string
  default     = "tessera_app"

  validation {
    condition     = can(regex("^[a-z][a-z0-9_]{0,62}$", var.db_app_username)) && var.db_app_username != "tessera"
    error_message = "db_app_username must be a lowercase PostgreSQL identifier other than the owner role tessera."
  }
}

variable "db_log_min_duration_ms" {
  description = "Statements running longer than this many milliseconds are logged (log_min_duration_statement)."
  type        = number
  default     = 1000

  validation {
    condition     = var.db_log_min_duration_ms >= 0
    error_message = "db_log_min_duration_ms must be 0 or more."
  }
}

variable "log_retention_days" {
  description = "Days the database's CloudWatch log groups keep their events."
  type        = number
  default     = 365

  validation {
    condition     = contains([365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a CloudWatch retention of at least a year: 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288 or 3653."
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
