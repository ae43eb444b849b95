{{/* Written by hand (not by `npm run gen:chart`). */}}

{{/* Helm's labels on every object's own metadata; selectors and pod labels stay the base's. */}}
{{- define "admitlb.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* repository:tag, or repository@digest when a digest is set. */}}
{{- define "admitlb.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end }}

{{/*
The manifests spell the namespace out (CEL expressions naming admitlb's ServiceAccount, the serving
certificate's names, the API server's client kubeconfig users): the chart installs into it only.
*/}}
{{- define "admitlb.checkNamespace" -}}
{{- if ne .Release.Namespace "admitlb-system" -}}
{{- fail (printf "admitlb installs into the namespace admitlb-system only (helm install --namespace admitlb-system), not %q" .Release.Namespace) -}}
{{- end -}}
{{- end }}
