{{/* Chart name, overridable with nameOverride. */}}
{{- define "vigil.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Resource name prefix: fullnameOverride, or <release>-<chart name> (just <release> when it
already contains the chart name). Truncated so that "-coordinator-headless" suffixes fit.
*/}}
{{- define "vigil.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Chart label value: <name>-<version>. */}}
{{- define "vigil.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels every object carries. */}}
{{- define "vigil.labels" -}}
helm.sh/chart: {{ include "vigil.chart" . }}
{{ include "vigil.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: vigil
{{- end -}}

{{/* Labels that select the release's pods (add app.kubernetes.io/component). */}}
{{- define "vigil.selectorLabels" -}}
app.kubernetes.io/name: {{ include "vigil.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Object names. */}}
{{- define "vigil.coordinator.name" -}}{{ include "vigil.fullname" . }}-coordinator{{- end -}}
{{- define "vigil.worker.name" -}}{{ include "vigil.fullname" . }}-worker{{- end -}}
{{- define "vigil.api.name" -}}{{ include "vigil.fullname" . }}-api{{- end -}}
{{- define "vigil.config.name" -}}{{ include "vigil.fullname" . }}-config{{- end -}}
{{- define "vigil.graphs.name" -}}{{ include "vigil.fullname" . }}-graphs{{- end -}}
{{- define "vigil.checkpoints.claim" -}}
{{- if .Values.checkpoints.existingClaim -}}
{{- .Values.checkpoints.existingClaim -}}
{{- else -}}
{{- include "vigil.fullname" . }}-checkpoints
{{- end -}}
{{- end -}}

{{/* The coordinator's stable DNS name (through its headless Service). */}}
{{- define "vigil.coordinator.host" -}}
{{- printf "%s.%s.svc.%s" (include "vigil.coordinator.name" .) .Release.Namespace .Values.clusterDomain -}}
{{- end -}}

{{/* The workers' headless Service domain: a worker is <pod name>.<this>. */}}
{{- define "vigil.worker.domain" -}}
{{- printf "%s.%s.svc.%s" (include "vigil.worker.name" .) .Release.Namespace .Values.clusterDomain -}}
{{- end -}}

{{/* ServiceAccount name. */}}
{{- define "vigil.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "vigil.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Image reference: repository:tag, tag defaulting to the chart's appVersion. */}}
{{- define "vigil.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* Secret of the API client CA. */}}
{{- define "vigil.apiClientCASecret" -}}
{{- default .Values.tls.api.secretName .Values.tls.api.clientCA.secretName -}}
{{- end -}}

{{/* Secret of the workers' cluster transport certificate. */}}
{{- define "vigil.workerClusterTLSSecret" -}}
{{- default .Values.tls.cluster.secretName .Values.tls.cluster.workerSecretName -}}
{{- end -}}

{{/*
Settings map -> TOML lines (key = value): strings quoted, whole numbers without a decimal
point, booleans bare.
*/}}
{{- define "vigil.toml" -}}
{{- range $k, $v := . }}
{{- if kindIs "string" $v }}
{{ $k }} = {{ $v | quote }}
{{- else if and (kindIs "float64" $v) (eq $v (floor $v)) }}
{{ $k }} = {{ $v | int64 }}
{{- else if or (kindIs "float64" $v) (kindIs "int64" $v) (kindIs "int" $v) (kindIs "bool" $v) }}
{{ $k }} = {{ $v }}
{{- else }}
{{- fail (printf "settings.%s: only strings, numbers and booleans are allowed" $k) }}
{{- end }}
{{- end }}
{{- end -}}

{{/* Checks of value combinations the schema cannot express. */}}
{{- define "vigil.validate" -}}
{{- if and .Values.tls.api.enabled (not .Values.tls.api.secretName) -}}
{{- fail "tls.api.enabled needs tls.api.secretName (a Secret with the API certificate and key)" -}}
{{- end -}}
{{- if and .Values.tls.api.clientCA.enabled (not .Values.tls.api.enabled) -}}
{{- fail "tls.api.clientCA.enabled (mutual TLS) needs tls.api.enabled" -}}
{{- end -}}
{{- if and .Values.tls.api.clientCA.enabled (not (include "vigil.apiClientCASecret" .)) -}}
{{- fail "tls.api.clientCA.enabled needs tls.api.clientCA.secretName or tls.api.secretName" -}}
{{- end -}}
{{- if and .Values.tls.cluster.enabled (not .Values.tls.cluster.secretName) -}}
{{- fail "tls.cluster.enabled needs tls.cluster.secretName (a Secret with certificate, key and CA)" -}}
{{- end -}}
{{- if and .Values.auth.tokens.enabled (not .Values.auth.tokens.secretName) -}}
{{- fail "auth.tokens.enabled needs auth.tokens.secretName (a Secret with the tokens file)" -}}
{{- end -}}
{{- if and .Values.audit.enabled (not (hasPrefix "/var/lib/vigil/data/" .Values.audit.path)) -}}
{{- fail "audit.path must be a file under /var/lib/vigil/data/ (the coordinator's persistent volume)" -}}
{{- end -}}
{{- end -}}

{{/* Probes on the metrics port: $ is the root context, .probe the probe's values, .path the URL path. */}}
{{- define "vigil.httpProbe" -}}
httpGet:
  path: {{ .path }}
  port: metrics
  scheme: HTTP
periodSeconds: {{ .probe.periodSeconds }}
timeoutSeconds: {{ .probe.timeoutSeconds }}
failureThreshold: {{ .probe.failureThreshold }}
{{- end -}}

{{/* NetworkPolicy ingress rule of the metrics port (indented for spec.ingress). */}}
{{- define "vigil.metricsIngress" }}
    # Prometheus scrapes /metrics.
    - ports:
        - port: {{ .Values.ports.metrics }}
          protocol: TCP
      {{- with .Values.networkPolicy.metricsNamespace }}
      from:
        - namespaceSelector:
            matchLabels:
              kubernetes.io/metadata.name: {{ . | quote }}
      {{- end }}
{{- end }}

{{/* NetworkPolicyPeer: the release's worker pods (indented for a from: list). */}}
{{- define "vigil.workerPeer" }}
        - podSelector:
            matchLabels:
              {{- include "vigil.selectorLabels" . | nindent 14 }}
              app.kubernetes.io/component: worker
{{- end }}
