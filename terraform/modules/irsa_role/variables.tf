variable "name" {
  description = "Name of the IAM role."
  type        = string

  validation {
    condition     = can(regex("^[\\w+=,.@-]{1,64}$", var.name))
    error_message = "name must be a valid IAM role name (at most 64 characters)."
  }
}

variable "description" {
  description = "Description of the IAM role (null: none)."
  type        = string
  default     = null
}

variable "oidc_provider_arn" {
  description = "ARN of the cluster's IAM OIDC provider, the role's federated principal."
  type        = string
}

variable "oidc_provider" {
  description = "Issuer of the cluster's OIDC provider without https:// (oidc.eks.<region>.amazonaws.com/id/<id>), the prefix of the trust's :sub and :aud condition keys."
  type        = string

  validation {
    condition     = !startswith(var.oidc_provider, "https://")
    error_message = "oidc_provider is the issuer's host and path, without https://."
  }
}

variable "namespace" {
  description = "Namespace of the one ServiceAccount that may assume the role."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", var.namespace))
    error_message = "namespace must be a Kubernetes namespace name, without wildcards."
  }
}

variable "service_account" {
  description = "Name of the one ServiceAccount that may assume the role."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9]([-.a-z0-9]*[a-z0-9])?$", var.service_account))
    error_message = "service_account must be a Kubernetes object name, without wildcards."
  }
}

variable "create_policy" {
  description = "Create a policy of the role's own from policy_json and attach it. A separate flag because policy_json is usually unknown until apply, and the policy's count cannot depend on it."
  type        = bool
  default     = true
}

variable "policy_json" {
  description = "The role's permissions: an IAM policy document (JSON), created as the policy policy_name and attached. Required when create_policy is true."
  type        = string
  default     = null
}

variable "policy_name" {
  description = "Name of the policy created from policy_json (null: the role's name)."
  type        = string
  default     = null
}

variable "policy_description" {
  description = "Description of the policy created from policy_json (null: none)."
  type        = string
  default     = null
}

variable "managed_policy_arns" {
  description = "ARNs of existing (for example AWS managed) policies to attach to the role as well."
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Tags of the role and its policy, on top of the provider's default_tags."
  type        = map(string)
  default     = {}
}
