{{- define "lhbw.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "lhbw.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "lhbw.labels" -}}
app.kubernetes.io/name: {{ include "lhbw.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "lhbw.selectorLabels" -}}
app.kubernetes.io/name: {{ include "lhbw.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "lhbw.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "lhbw.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "lhbw.tlsSecret" -}}
{{- printf "%s-tls" (include "lhbw.fullname" .) -}}
{{- end -}}

{{- define "lhbw.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* The webhook configuration is cluster-scoped: its name carries the namespace. */}}
{{- define "lhbw.webhookConfiguration" -}}
{{- printf "%s-%s" (include "lhbw.fullname" .) .Release.Namespace | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The exempt accounts as CEL string literals: 'system:serviceaccount:NS:NAME', ... */}}
{{- define "lhbw.exemptUsernames" -}}
{{- $ns := .Values.longhorn.namespace -}}
{{- $out := list -}}
{{- range .Values.webhook.exemptAccounts -}}
{{- if hasPrefix "system:" . -}}
{{- $out = append $out (printf "%q" .) -}}
{{- else -}}
{{- $out = append $out (printf "%q" (printf "system:serviceaccount:%s:%s" $ns .)) -}}
{{- end -}}
{{- end -}}
{{- join ", " $out -}}
{{- end -}}
