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

{{/* The ServiceAccount the workloads run as. */}}
{{- define "tessera.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "tessera.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
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
{{- $service := printf "%s-nats" .Release.Name }}
{{- if contains "nats" .Release.Name }}
{{- $service = .Release.Name }}
{{- end }}
{{- printf "nats://%s:4222" ($service | trunc 63 | trimSuffix "-") }}
{{- end }}
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
