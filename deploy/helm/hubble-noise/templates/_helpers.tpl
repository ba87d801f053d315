{{/* The chart's name, or nameOverride. */}}
{{- define "hubble-noise.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Object names: fullnameOverride, else the release name when it already contains the
chart's name, else <release>-<name>. */}}
{{- define "hubble-noise.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "hubble-noise.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Labels the Deployment's selector, the Service and the PodMonitor select by. */}}
{{- define "hubble-noise.selectorLabels" -}}
app.kubernetes.io/name: {{ include "hubble-noise.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Labels of every object. */}}
{{- define "hubble-noise.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "hubble-noise.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: hubble-noise
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "hubble-noise.image" -}}
{{- $tag := .Values.image.tag | default .Chart.AppVersion -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/* Where the relay's client certificate is mounted. */}}
{{- define "hubble-noise.tlsDir" -}}/var/lib/hubble-noise/tls{{- end -}}

{{/* Where metrics.webSecurity.existingSecret (web-config.yml and its files) is mounted. */}}
{{- define "hubble-noise.webDir" -}}/etc/hubble-noise-web{{- end -}}

{{/* Where config.toml, the rule files and the policy files are mounted. */}}
{{- define "hubble-noise.configDir" -}}/etc/hubble-noise{{- end -}}

{{- define "hubble-noise.relayAddress" -}}
{{- if .Values.relay.address -}}
{{- .Values.relay.address -}}
{{- else if .Values.relay.tls.enabled -}}
{{- printf "https://hubble-relay.%s.svc:443" .Release.Namespace -}}
{{- else -}}
{{- printf "http://hubble-relay.%s.svc:80" .Release.Namespace -}}
{{- end -}}
{{- end -}}

{{/* One TOML value: a string, a boolean, a number (YAML integers reach templates as float64:
whole numbers are written as integers) or an array of those. Strings are written as JSON
strings, which are valid TOML basic strings. */}}
{{- define "hubble-noise.tomlValue" -}}
{{- if kindIs "string" . -}}
{{- toJson . -}}
{{- else if kindIs "bool" . -}}
{{- ternary "true" "false" . -}}
{{- else if or (kindIs "float64" .) (kindIs "float32" .) -}}
{{- if eq (float64 .) (floor .) -}}
{{- int64 . -}}
{{- else -}}
{{- . -}}
{{- end -}}
{{- else if or (kindIs "int" .) (kindIs "int64" .) (kindIs "int32" .) (kindIs "uint64" .) -}}
{{- . -}}
{{- else if kindIs "slice" . -}}
[{{- range $i, $v := . -}}{{- if $i -}}, {{ end -}}{{- include "hubble-noise.tomlValue" $v -}}{{- end -}}]
{{- else -}}
{{- fail (printf "config: cannot write %v (%s) as a TOML value" . (kindOf .)) -}}
{{- end -}}
{{- end -}}

{{/* config.toml: the chart's own keys, then config.<section> from the values. */}}
{{- define "hubble-noise.configToml" -}}
{{- $dir := include "hubble-noise.configDir" . -}}
{{- $tls := include "hubble-noise.tlsDir" . -}}
{{- $own := dict
  "relay" (dict "address" (include "hubble-noise.relayAddress" .) "nodes" .Values.relay.nodes)
  "metrics" (dict "listen" (printf "0.0.0.0:%d" (int .Values.metrics.port)))
  "classify" (dict "rule_files" (keys .Values.rules | sortAlpha) "policy_files" (keys .Values.policies | sortAlpha))
  "dns" dict
  "log" dict
  "export" dict
  "triage" dict -}}
{{- if .Values.metrics.webSecurity.enabled -}}
{{- $_ := set $own.metrics "web_config_file" (printf "%s/web-config.yml" (include "hubble-noise.webDir" .)) -}}
{{- end -}}
{{- if .Values.relay.tls.enabled -}}
{{- $_ := set $own.relay "server_name" .Values.relay.tls.serverName -}}
{{- $_ := set $own.relay "ca_file" (printf "%s/ca.crt" $tls) -}}
{{- if .Values.relay.tls.clientCertificate -}}
{{- $_ := set $own.relay "cert_file" (printf "%s/tls.crt" $tls) -}}
{{- $_ := set $own.relay "key_file" (printf "%s/tls.key" $tls) -}}
{{- end -}}
{{- end -}}
# hubble-noise configuration, written by the Helm chart from its values (release {{ .Release.Name }}).
# Every key and its default: config.toml at the repository's root. Paths are relative to this
# file's folder ({{ $dir }}). Rule and policy files reload on change; other keys restart the pod.
{{- range $section := list "relay" "metrics" "classify" "dns" "log" "export" "triage" }}
{{- $keys := merge (dict) (get $own $section) (get $.Values.config $section | default dict) }}
{{- if $keys }}

[{{ $section }}]
{{- range $key, $value := $keys }}
{{ $key }} = {{ include "hubble-noise.tomlValue" $value }}
{{- end }}
{{- end }}
{{- end }}
{{- end -}}
