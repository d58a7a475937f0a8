{{/* Name of the shim's Deployment and Service: the release name when it already says azure-driver. */}}
{{- define "azure-driver.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "azure-driver.controllerName" -}}
{{- printf "%s-controller" (include "azure-driver.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "azure-driver.shimServiceAccount" -}}
{{- include "azure-driver.fullname" . -}}
{{- end -}}

{{- define "azure-driver.controllerServiceAccount" -}}
{{- include "azure-driver.controllerName" . -}}
{{- end -}}

{{- define "azure-driver.image" -}}
{{- printf "%s:%s" .Values.docker.image (.Values.docker.version | default .Chart.AppVersion | toString) -}}
{{- end -}}

{{/* Labels every object carries. */}}
{{- define "azure-driver.labels" -}}
app: azure-driver
part-of: lm
app.kubernetes.io/name: azure-driver
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: lm
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "azure-driver.shimSelector" -}}
app: azure-driver
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: driver-api
{{- end -}}

{{- define "azure-driver.controllerSelector" -}}
app: azure-driver
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: controller
{{- end -}}

{{/* The shim's resources: app.resources overridden key by key by top-level resources. */}}
{{- define "azure-driver.shimResources" -}}
{{- $resources := deepCopy (.Values.app.resources | default dict) -}}
{{- $resources = mergeOverwrite $resources (deepCopy (.Values.resources | default dict)) -}}
{{- include "azure-driver.resources" $resources -}}
{{- end -}}

{{/*
Resource requirements with every quantity as a string: values files say `cpu: 2`, and
server-side apply (Helm 4) rejects numbers where the schema says quantity.
*/}}
{{- define "azure-driver.resources" -}}
{{- range $section, $quantities := . }}
{{ $section }}:
{{- range $name, $quantity := $quantities }}
  {{ $name }}: {{ include "azure-driver.quantity" $quantity | quote }}
{{- end }}
{{- end }}
{{- end -}}

{{- define "azure-driver.quantity" -}}
{{- if and (kindIs "float64" .) (eq (float64 (int64 .)) .) -}}
{{- int64 . -}}
{{- else -}}
{{- . -}}
{{- end -}}
{{- end -}}

{{/* Namespaces the controller watches; empty means all. The release namespace is always among them. */}}
{{- define "azure-driver.watchNamespaces" -}}
{{- if not .Values.controller.watchAllNamespaces -}}
{{- $namespaces := .Values.controller.watchNamespaces | default list -}}
{{- join "," (append $namespaces .Release.Namespace | uniq) -}}
{{- end -}}
{{- end -}}

{{/* Secret holding the operator's service principal, if any. */}}
{{- define "azure-driver.credentialsSecret" -}}
{{- if .Values.azure.credentials.existingSecret -}}
{{- .Values.azure.credentials.existingSecret -}}
{{- else if .Values.azure.credentials.create -}}
{{- printf "%s-azure-credentials" .Release.Name -}}
{{- end -}}
{{- end -}}

{{/* RUST_LOG derived from the legacy log level. */}}
{{- define "azure-driver.rustLog" -}}
{{- if .Values.controller.logFilter -}}
{{- .Values.controller.logFilter -}}
{{- else -}}
{{- $level := .Values.app.config.log.level | default "INFO" | lower -}}
{{- $level = ternary "warn" $level (eq $level "warning") -}}
{{- $level = ternary "error" $level (eq $level "critical") -}}
{{- $level -}}
{{- end -}}
{{- end -}}

{{/* Pod security context: a fixed UID only when arbitrary UIDs are disabled. */}}
{{- define "azure-driver.podSecurityContext" -}}
runAsNonRoot: true
{{- if not .Values.global.arbitraryUids }}
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
{{- end }}
{{- if semverCompare ">=1.19-0" .Capabilities.KubeVersion.Version }}
seccompProfile:
  type: RuntimeDefault
{{- end }}
{{- end -}}

{{- define "azure-driver.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop: ["ALL"]
{{- end -}}

{{/* Operator identity env (both components read it). */}}
{{- define "azure-driver.azureEnv" -}}
{{- with .Values.azure.subscriptionId }}
- name: AZURE_SUBSCRIPTION_ID
  value: {{ . | quote }}
{{- end }}
{{- with .Values.azure.resourceManagerEndpoint }}
- name: AZURE_RESOURCE_MANAGER_ENDPOINT
  value: {{ . | quote }}
{{- end }}
{{- with .Values.azure.authorityHost }}
- name: AZURE_AUTHORITY_HOST
  value: {{ . | quote }}
{{- end }}
{{- end -}}

{{/* Objects made by the shim may fall back to the operator identity only when the values say so. */}}
{{- define "azure-driver.operatorIdentity" -}}
{{- if and .Values.azure.shimUsesOperatorIdentity (or .Values.azure.workloadIdentity.enabled (include "azure-driver.credentialsSecret" .)) -}}
true
{{- end -}}
{{- end -}}

{{/* The one egress rule of both NetworkPolicies: networkPolicy.egress ports (TCP, and UDP for DNS) to its peers. */}}
{{- define "azure-driver.egressRule" -}}
{{- $egress := .Values.networkPolicy.egress -}}
- ports:
    {{- range $port := $egress.ports }}
    - port: {{ $port }}
      protocol: TCP
    {{- if eq (int $port) 53 }}
    - port: 53
      protocol: UDP
    {{- end }}
    {{- end }}
  {{- with $egress.to }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}
