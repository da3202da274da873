################################################################################
# Pod autoscaling. metrics-server serves the resource metrics API that the chart's CPU
# HorizontalPodAutoscalers read; KEDA scales on event sources (queue depth) through its
# own ScaledObjects, which the chart may create. Neither calls AWS, so neither has an
# IAM role. Both run on the managed system nodes.
################################################################################

resource "helm_release" "metrics_server" {
  name       = "metrics-server"
  namespace  = "kube-system"
  repository = "https://kubernetes-sigs.github.io/metrics-server/"
  chart      = "metrics-server"
  version    = "3.13.1"

  values = [yamlencode({
    # Two replicas and a disruption budget: the HPAs stop scaling while it is down.
    replicas = 2
    podDisruptionBudget = {
      enabled      = true
      minAvailable = 1
    }
    nodeSelector = {
      "tessera.io/node-pool" = "system"
    }
  })]

  depends_on = [module.eks]
}

resource "helm_release" "keda" {
  name             = "keda"
  namespace        = "keda"
  create_namespace = true
  repository       = "https://kedacore.github.io/charts"
  chart            = "keda"
  version          = "2.20.2"

  values = [yamlencode({
    nodeSelector = {
      "tessera.io/node-pool" = "system"
    }
  })]

  depends_on = [module.eks]
}
