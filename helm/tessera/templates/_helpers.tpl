{{/* The chart's name. */}}
{{- define "tessera.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's full name: every resource name starts with it. */}}
{{- define "tessera.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Labels on every resource. */}}
{{- define "tessera.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "tessera.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Selector labels of one component: call with (dict "root" $ "component" "ingest"). */}}
{{- define "tessera.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tessera.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* The name of one component's resources: call with (dict "root" $ "component" "ingest"). */}}
{{- define "tessera.componentName" -}}
{{- printf "%s-%s" (include "tessera.fullname" .root) .component | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The ServiceAccount of one workload: call with (dict "root" $ "component" "ingest"). */}}
{{- define "tessera.serviceAccountName" -}}
{{- include "tessera.componentName" . }}
{{- end }}

{{/*
"true" when a KEDA ScaledObject scales the component (export, inference, triton), so
that it gets no HorizontalPodAutoscaler and no fixed replicas: call with
(dict "root" $ "component" "export").
*/}}
{{- define "tessera.kedaScaled" -}}
{{- $keda := .root.Values.autoscaling.keda }}
{{- if and $keda.enabled (has .component (list "export" "inference" "triton")) }}
{{- if or (ne .component "triton") .root.Values.triton.enabled }}true{{ end }}
{{- end }}
{{- end }}

{{/* "true" when a CPU HorizontalPodAutoscaler scales the workload: (dict "root" $ "component" "ingest"). */}}
{{- define "tessera.hpaScaled" -}}
{{- $workload := get .root.Values.workloads .component }}
{{- if and $workload.autoscaling.enabled (not (include "tessera.kedaScaled" .)) }}true{{ end }}
{{- end }}

{{/* Triton's fewest replicas under KEDA: 0 with gpuScaleToZero. */}}
{{- define "tessera.tritonMinReplicas" -}}
{{- if .Values.autoscaling.keda.gpuScaleToZero }}0{{ else }}{{ .Values.autoscaling.keda.triton.minReplicas }}{{ end }}
{{- end }}

{{/*
The readiness path of a workload: call with (dict "root" $ "component" "inference").
Inference's /readyz asks Triton; while Triton may be scaled to zero it uses /healthz.
*/}}
{{- define "tessera.readinessPath" -}}
{{- $workload := get .root.Values.workloads .component }}
{{- $keda := .root.Values.autoscaling.keda }}
{{- if and (eq .component "inference") $keda.enabled $keda.gpuScaleToZero }}
{{- "/healthz" }}
{{- else }}
{{- $workload.readinessPath }}
{{- end }}
{{- end }}

{{/*
The Secret of the migration Job's database owner (keys: secrets.databaseOwner.urlKey
and .appRolePasswordKey), or nothing when the Job runs as the application's user.
*/}}
{{- define "tessera.ownerSecretName" -}}
{{- if .Values.database.externalSecrets.enabled }}
{{- include "tessera.componentName" (dict "root" . "component" "database-owner") }}
{{- else }}
{{- .Values.secrets.databaseOwner.existingSecret }}
{{- end }}
{{- end }}

{{/* The bundled NATS chart's full name (its Services and StatefulSet). */}}
{{- define "tessera.natsFullname" -}}
{{- $service := printf "%s-nats" .Release.Name }}
{{- if contains "nats" .Release.Name }}
{{- $service = .Release.Name }}
{{- end }}
{{- $service | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Where KEDA reads JetStream consumers: the monitoring port of the NATS servers behind the
bundled chart's headless Service. In a cluster KEDA asks each server by name
(<pod>.<headless service>), so this must be the headless Service's DNS name.
*/}}
{{- define "tessera.natsMonitoringEndpoint" -}}
{{- printf "%s-headless.%s.svc.cluster.local:8222" (include "tessera.natsFullname" .) .Release.Namespace }}
{{- end }}

{{/*
"true" when the Ingress is for the AWS Load Balancer Controller: ingress.alb.enabled, or
ingress.className alb (as terraform's chart_values output sets it).
*/}}
{{- define "tessera.albEnabled" -}}
{{- if or .Values.ingress.alb.enabled (eq .Values.ingress.className "alb") }}true{{ end }}
{{- end }}

{{/*
The Ingress's paths as JSON {"paths": [{path, pathType, service, source}]}: the standard
list of files/routes.json for the ALB and pathStyle standard, the regex list otherwise.
*/}}
{{- define "tessera.ingressPaths" -}}
{{- $routes := .Files.Get "files/routes.json" | fromJson }}
{{- if or (not $routes.paths) (not $routes.standard) }}
{{- fail "files/routes.json is missing or stale: run python -m tessera.gateway.ingress --write helm/tessera/files/routes.json" }}
{{- end }}
{{- $paths := list }}
{{- if or (include "tessera.albEnabled" .) (eq .Values.ingress.pathStyle "standard") }}
{{- $paths = $routes.standard }}
{{- else }}
{{- range $routes.paths }}
{{- $paths = append $paths (merge (dict "pathType" "ImplementationSpecific") .) }}
{{- end }}
{{- end }}
{{- toJson (dict "paths" $paths) }}
{{- end }}

{{/* The components the Ingress sends requests to, as JSON {"services": [...]}. */}}
{{- define "tessera.ingressBackends" -}}
{{- $backends := list }}
{{- if .Values.ingress.enabled }}
{{- range (include "tessera.ingressPaths" . | fromJson).paths }}
{{- $backends = append $backends .service }}
{{- end }}
{{- end }}
{{- toJson (dict "services" ($backends | uniq | sortAlpha)) }}
{{- end }}

{{/* The image of one service: call with (dict "root" $ "component" "ingest"). */}}
{{- define "tessera.image" -}}
{{- printf "%s-%s:%s" .root.Values.image.repository .component (default .root.Chart.AppVersion .root.Values.image.tag) }}
{{- end }}

{{/* Where the services reach NATS: the bundled chart's client Service unless natsUrl is set. */}}
{{- define "tessera.natsUrl" -}}
{{- if .Values.natsUrl }}
{{- .Values.natsUrl }}
{{- else if not .Values.nats.enabled }}
{{- fail "natsUrl is required when nats.enabled is false" }}
{{- else }}
{{- printf "nats://%s:4222" (include "tessera.natsFullname" .) }}
{{- end }}
{{- end }}

{{/*
nats.streamReplicas, refused when the bundled NATS has fewer servers: JetStream would
refuse the streams and no service would start.
*/}}
{{- define "tessera.natsStreamReplicas" -}}
{{- $replicas := int .Values.nats.streamReplicas }}
{{- if .Values.nats.enabled }}
{{- $cluster := .Values.nats.config.cluster | default dict }}
{{- $servers := ternary (int ($cluster.replicas | default 3)) 1 (eq (toString $cluster.enabled) "true") }}
{{- if gt $replicas $servers }}
{{- fail (printf "nats.streamReplicas (%d) exceeds the bundled NATS's JetStream servers (%d)" $replicas $servers) }}
{{- end }}
{{- end }}
{{- $replicas }}
{{- end }}

{{/* The S3 URL of Triton's model repository. */}}
{{- define "tessera.tritonModelRepository" -}}
{{- if .Values.triton.modelRepository }}
{{- .Values.triton.modelRepository }}
{{- else }}
{{- printf "s3://%s/%s" .Values.s3.bucket .Values.triton.modelRepositoryPrefix }}
{{- end }}
{{- end }}

{{/* The Triton gRPC endpoint as the inference service reaches it. */}}
{{- define "tessera.tritonUrl" -}}
{{- printf "%s:8001" (include "tessera.componentName" (dict "root" . "component" "triton")) }}
{{- end }}

{{/* Prometheus scrape annotations for a pod template: call with (dict "root" $ "port" 8000). */}}
{{- define "tessera.scrapeAnnotations" -}}
{{- if .root.Values.metrics.scrape }}
prometheus.io/scrape: "true"
prometheus.io/port: {{ .port | quote }}
prometheus.io/path: /metrics
{{- end }}
{{- end }}

{{/*
The environment every service process needs (tessera.platform.settings.PlatformSettings).
Outside TESSERA_ENV=dev the settings refuse the development defaults of the database
URL, the S3 secret key and the bootstrap admin's password, so all three come from
Secrets, in the migration Job too.
*/}}
{{- define "tessera.platformEnv" -}}
- name: TESSERA_ENV
  value: {{ .Values.environment | quote }}
- name: TESSERA_LOG_LEVEL
  value: {{ .Values.logLevel | quote }}
- name: TESSERA_LOG_JSON
  value: {{ .Values.logJson | quote }}
- name: TESSERA_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ required "secrets.database.existingSecret is required" .Values.secrets.database.existingSecret }}
      key: {{ .Values.secrets.database.urlKey }}
- name: TESSERA_TRUSTED_PROXIES
  value: {{ toJson .Values.trustedProxies | quote }}
- name: TESSERA_DATABASE_POOL_SIZE
  value: {{ .Values.databasePoolSize | quote }}
- name: TESSERA_MIGRATE_ON_START
  value: "false"
- name: TESSERA_NATS_URL
  value: {{ include "tessera.natsUrl" . | quote }}
- name: TESSERA_NATS_STREAM_REPLICAS
  value: {{ include "tessera.natsStreamReplicas" . | quote }}
{{- if .Values.secrets.nats.existingSecret }}
- name: TESSERA_NATS_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ .Values.secrets.nats.existingSecret }}
      key: {{ .Values.secrets.nats.tokenKey }}
{{- end }}
{{- if .Values.s3.endpointUrl }}
- name: TESSERA_S3_ENDPOINT_URL
  value: {{ .Values.s3.endpointUrl | quote }}
{{- end }}
- name: TESSERA_S3_REGION
  value: {{ .Values.s3.region | quote }}
- name: TESSERA_S3_BUCKET
  value: {{ .Values.s3.bucket | quote }}
- name: TESSERA_S3_CREATE_BUCKET
  value: "false"
{{- if .Values.secrets.s3.existingSecret }}
- name: TESSERA_S3_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ .Values.secrets.s3.existingSecret }}
      key: {{ .Values.secrets.s3.accessKeyKey }}
- name: TESSERA_S3_SECRET_KEY
  valueFrom:
    secretKeyRef:
      name: {{ .Values.secrets.s3.existingSecret }}
      key: {{ .Values.secrets.s3.secretKeyKey }}
{{- end }}
- name: TESSERA_BOOTSTRAP_ADMIN_USERNAME
  value: {{ .Values.bootstrapAdmin.username | quote }}
- name: TESSERA_BOOTSTRAP_ADMIN_EMAIL
  value: {{ .Values.bootstrapAdmin.email | quote }}
- name: TESSERA_BOOTSTRAP_ADMIN_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ required "secrets.bootstrapAdmin.existingSecret is required" .Values.secrets.bootstrapAdmin.existingSecret }}
      key: {{ .Values.secrets.bootstrapAdmin.passwordKey }}
{{- if .Values.secrets.bootstrapAdmin.tokenKey }}
- name: TESSERA_BOOTSTRAP_ADMIN_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ .Values.secrets.bootstrapAdmin.existingSecret }}
      key: {{ .Values.secrets.bootstrapAdmin.tokenKey }}
{{- end }}
- name: NUMBA_CACHE_DIR
  value: /tmp/numba-cache
{{- end }}

{{/*
One step of the migration Job: call with (dict "root" $ "service" "ingest" "owner" <owner
Secret name or "">).
*/}}
{{- define "tessera.migrateStep" -}}
{{- $root := .root }}
- name: {{ printf "migrate-%s" .service }}
  image: {{ include "tessera.image" (dict "root" $root "component" .service) }}
  imagePullPolicy: {{ $root.Values.image.pullPolicy }}
  {{- if .owner }}
  command: ["tessera-migrate", "--app-role", {{ $root.Values.database.appRole | quote }}, {{ printf "tessera.%s.migrations" .service | quote }}]
  {{- else }}
  command: ["tessera-migrate", {{ printf "tessera.%s.migrations" .service | quote }}]
  {{- end }}
  env:
    - name: TESSERA_ENV
      value: {{ $root.Values.environment | quote }}
    - name: TESSERA_LOG_LEVEL
      value: {{ $root.Values.logLevel | quote }}
    - name: TESSERA_LOG_JSON
      value: {{ $root.Values.logJson | quote }}
    {{- if .owner }}
    - name: TESSERA_DATABASE_URL
      valueFrom:
        secretKeyRef:
          name: {{ .owner }}
          key: {{ $root.Values.secrets.databaseOwner.urlKey }}
    - name: TESSERA_APP_ROLE_PASSWORD
      valueFrom:
        secretKeyRef:
          name: {{ .owner }}
          key: {{ $root.Values.secrets.databaseOwner.appRolePasswordKey }}
    {{- else }}
    - name: TESSERA_DATABASE_URL
      valueFrom:
        secretKeyRef:
          name: {{ required "secrets.database.existingSecret is required" $root.Values.secrets.database.existingSecret }}
          key: {{ $root.Values.secrets.database.urlKey }}
    {{- end }}
  resources:
    {{- toYaml $root.Values.migrations.resources | nindent 4 }}
  securityContext:
    {{- toYaml $root.Values.containerSecurityContext | nindent 4 }}
  volumeMounts:
    - name: tmp
      mountPath: /tmp
{{- end }}

{{/*
An expression of ESO's template engine (the argument between double braces), written
out literally: Helm would evaluate it if the template held it as it is. Call with
".password | urlquery".
*/}}
{{- define "tessera.esoExpression" -}}
{{- printf "%s %s %s" (print "{" "{") . (print "}" "}") }}
{{- end }}
