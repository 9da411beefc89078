{{/* Names: the release's prefix, cut to 63 characters (object names and label values). */}}
{{- define "peertracker.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "peertracker.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* A component's object name: <fullname>-<component>, kept within 63 characters. */}}
{{- define "peertracker.componentName" -}}
{{- $full := include "peertracker.fullname" .root | trunc (int (sub 62 (len .component))) | trimSuffix "-" -}}
{{- printf "%s-%s" $full .component -}}
{{- end -}}

{{- define "peertracker.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels of every object; args: root, component. */}}
{{- define "peertracker.labels" -}}
helm.sh/chart: {{ include "peertracker.chart" .root }}
{{ include "peertracker.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: peertracker
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Selector labels; the component label doubles as Prometheus' job name (ServiceMonitor jobLabel),
so that the alert rules' up{job="gateway"} hold under the operator as under compose. */}}
{{- define "peertracker.selectorLabels" -}}
app.kubernetes.io/name: {{ include "peertracker.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "peertracker.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "peertracker.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* An image reference; args: root, repository. */}}
{{- define "peertracker.image" -}}
{{- $repo := .repository -}}
{{- with .root.Values.image.registry }}{{ $repo = printf "%s/%s" (trimSuffix "/" .) $repo }}{{ end -}}
{{- printf "%s:%s" $repo (default .root.Chart.AppVersion .root.Values.image.tag) -}}
{{- end -}}

{{- define "peertracker.connectionSecretName" -}}
{{- default (include "peertracker.componentName" (dict "root" . "component" "connection")) .Values.connectionSecret.existingSecret -}}
{{- end -}}

{{- define "peertracker.redisConfigured" -}}
{{- if or .Values.redis.clusterNodes .Values.redis.url .Values.redis.existingSecret }}true{{ end -}}
{{- end -}}

{{- define "peertracker.statsRedisConfigured" -}}
{{- if or .Values.redis.statsClusterNodes (include "peertracker.redisConfigured" .) }}true{{ end -}}
{{- end -}}

{{/* Checks of combinations the schema cannot express; each failure names the values to change. */}}
{{- define "peertracker.validate" -}}
{{- $v := .Values -}}
{{- $redis := include "peertracker.redisConfigured" . -}}
{{- if eq $v.store.type "memory" -}}
{{- if or $v.gateway.autoscaling.enabled (gt (int $v.gateway.replicas) 1) -}}
{{- fail "store.type=memory keeps swarms inside one gateway: set gateway.replicas to 1 and gateway.autoscaling.enabled to false, or use store.type=redis" -}}
{{- end -}}
{{- else if not $redis -}}
{{- fail "store.type=redis needs redis.clusterNodes, redis.url or redis.existingSecret" -}}
{{- end -}}
{{- if and (or $v.redis.username $v.redis.passwordSecret) (not (or $v.redis.clusterNodes $v.redis.statsClusterNodes)) -}}
{{- fail "redis.username and redis.passwordSecret are a Redis Cluster's (redis.clusterNodes); a single server's credentials go in its URL (redis.existingSecret)" -}}
{{- end -}}
{{- if and $v.redis.clusterNodes (or $v.redis.url $v.redis.existingSecret) -}}
{{- fail "set redis.clusterNodes (a Redis Cluster) or redis.url / redis.existingSecret (one server), not both" -}}
{{- end -}}
{{- if and (or $v.statsWorker.enabled $v.statsApi.enabled) (not (include "peertracker.statsRedisConfigured" .)) -}}
{{- fail "statsWorker and statsApi need Redis: set redis.clusterNodes, redis.url or redis.existingSecret" -}}
{{- end -}}
{{- if eq (int $v.gateway.port) (int $v.gateway.metricsPort) -}}
{{- fail "gateway.metricsPort must differ from gateway.port (metrics stay off the public announce port)" -}}
{{- end -}}
{{- range list "redis" "kafka" -}}
{{- $t := index $v . "tls" -}}
{{- if and $t.enabled $t.existingSecret (not (or $t.caKey $t.clientCertificate)) -}}
{{- fail (printf "%s.tls.existingSecret is used for nothing: set %s.tls.caKey or %s.tls.clientCertificate" . . .) -}}
{{- end -}}
{{- if and $t.clientCertificate (not $t.existingSecret) -}}
{{- fail (printf "%s.tls.clientCertificate needs %s.tls.existingSecret, the Secret holding the certificate and key" . .) -}}
{{- end -}}
{{- if and (not $t.enabled) (or $t.existingSecret $t.clientCertificate $t.serverName) -}}
{{- fail (printf "%s.tls settings are given but %s.tls.enabled is false" . .) -}}
{{- end -}}
{{- end -}}
{{- with $v.kafka.sasl -}}
{{- if and .mechanism (not (and .username .passwordSecret)) -}}
{{- fail "kafka.sasl.mechanism needs kafka.sasl.username and kafka.sasl.passwordSecret" -}}
{{- end -}}
{{- if and (not .mechanism) (or .username .passwordSecret) -}}
{{- fail "kafka.sasl.username and kafka.sasl.passwordSecret need kafka.sasl.mechanism (plain, scram-sha-256 or scram-sha-512)" -}}
{{- end -}}
{{- end -}}
{{- if and $v.statsWorker.enabled (not $v.kafka.brokers) -}}
{{- fail "statsWorker.enabled needs kafka.brokers (the worker reads the gateways' announce events)" -}}
{{- end -}}
{{- if and $v.gateway.autoscaling.enabled (lt (int $v.gateway.autoscaling.maxReplicas) (int $v.gateway.autoscaling.minReplicas)) -}}
{{- fail "gateway.autoscaling.maxReplicas must be at least gateway.autoscaling.minReplicas" -}}
{{- end -}}
{{- end -}}

{{/* The Redis environment shared by the gateway, the worker and the API. */}}
{{- define "peertracker.redisEnv" -}}
{{- include "peertracker.redisEnvOf" (dict "Values" .Values "stats" false) -}}
{{- end -}}

{{/* The statistics' Redis: their own cluster when redis.statsClusterNodes is set. */}}
{{- define "peertracker.statsRedisEnv" -}}
{{- include "peertracker.redisEnvOf" (dict "Values" .Values "stats" true) -}}
{{- end -}}

{{- define "peertracker.redisEnvOf" -}}
{{- $r := .Values.redis -}}
{{- if and .stats $r.statsClusterNodes }}
- name: REDIS_CLUSTER_NODES
  value: {{ join "," $r.statsClusterNodes | quote }}
{{- include "peertracker.redisAuthEnv" $r }}
{{- else if $r.clusterNodes }}
- name: REDIS_CLUSTER_NODES
  value: {{ join "," $r.clusterNodes | quote }}
{{- include "peertracker.redisAuthEnv" $r }}
{{- else if .Values.redis.existingSecret }}
- name: REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.redis.existingSecret }}
      key: {{ .Values.redis.existingSecretKey }}
{{- else if .Values.redis.url }}
- name: REDIS_URL
  value: {{ .Values.redis.url | quote }}
{{- end }}
{{- include "peertracker.tlsEnv" (dict "prefix" "REDIS" "tls" $r.tls) }}
{{- end -}}

{{/* Where a connection's TLS files are mounted; arg: redis or kafka. */}}
{{- define "peertracker.tlsDir" -}}
/etc/peertracker/tls/{{ . }}
{{- end -}}

{{/* TLS environment of one connection; args: prefix (REDIS or KAFKA), tls (its values). */}}
{{- define "peertracker.tlsEnv" -}}
{{- $t := .tls -}}
{{- $dir := include "peertracker.tlsDir" (lower .prefix) -}}
{{- if $t.enabled }}
- name: {{ .prefix }}_TLS
  value: "true"
{{- if and $t.existingSecret $t.caKey }}
- name: {{ .prefix }}_TLS_CA_FILE
  value: {{ printf "%s/%s" $dir $t.caKey | quote }}
{{- end }}
{{- if and $t.existingSecret $t.clientCertificate }}
- name: {{ .prefix }}_TLS_CERT_FILE
  value: {{ printf "%s/%s" $dir $t.certKey | quote }}
- name: {{ .prefix }}_TLS_KEY_FILE
  value: {{ printf "%s/%s" $dir $t.keyKey | quote }}
{{- end }}
{{- with $t.serverName }}
- name: {{ $.prefix }}_TLS_SERVERNAME
  value: {{ . | quote }}
{{- end }}
{{- end }}
{{- end -}}

{{/* The Kafka environment of the gateway and the worker: brokers, topic, TLS and SASL. */}}
{{- define "peertracker.kafkaEnv" -}}
{{- $k := .Values.kafka -}}
- name: KAFKA_BROKERS
  value: {{ join "," $k.brokers | quote }}
- name: KAFKA_TOPIC
  value: {{ $k.topic | quote }}
{{- include "peertracker.tlsEnv" (dict "prefix" "KAFKA" "tls" $k.tls) }}
{{- with $k.sasl.mechanism }}
- name: KAFKA_SASL_MECHANISM
  value: {{ . | quote }}
- name: KAFKA_SASL_USERNAME
  value: {{ $k.sasl.username | quote }}
- name: KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $k.sasl.passwordSecret }}
      key: {{ $k.sasl.passwordSecretKey }}
{{- end }}
{{- end -}}

{{/* The TLS Secrets' items of the connections a pod uses, as volumes; args: root, names (list of redis, kafka). */}}
{{- define "peertracker.tlsVolumes" -}}
{{- range .names }}
{{- $t := index $.root.Values . "tls" }}
{{- if and $t.enabled $t.existingSecret }}
- name: {{ . }}-tls
  secret:
    secretName: {{ $t.existingSecret }}
    # (readable by the container's user, which is not the files' owner without an fsGroup)
    defaultMode: 0444
    items:
      {{- if $t.caKey }}
      - { key: {{ $t.caKey }}, path: {{ $t.caKey }} }
      {{- end }}
      {{- if $t.clientCertificate }}
      - { key: {{ $t.certKey }}, path: {{ $t.certKey }} }
      - { key: {{ $t.keyKey }}, path: {{ $t.keyKey }} }
      {{- end }}
{{- end }}
{{- end }}
{{- end -}}

{{/* Their mounts; args as for tlsVolumes. */}}
{{- define "peertracker.tlsMounts" -}}
{{- range .names }}
{{- $t := index $.root.Values . "tls" }}
{{- if and $t.enabled $t.existingSecret }}
- name: {{ . }}-tls
  mountPath: {{ include "peertracker.tlsDir" . }}
  readOnly: true
{{- end }}
{{- end }}
{{- end -}}

{{/* A Redis Cluster's credentials; arg: .Values.redis. */}}
{{- define "peertracker.redisAuthEnv" -}}
{{- with .username }}
- name: REDIS_USERNAME
  value: {{ . | quote }}
{{- end }}
{{- with .passwordSecret }}
- name: REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: {{ $.passwordSecretKey }}
{{- end }}
{{- end -}}

{{/* OpenTelemetry environment; args: root, service (the service.name). */}}
{{- define "peertracker.otelEnv" -}}
{{- with .root.Values.otel }}
{{- if .endpoint }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ .endpoint | quote }}
- name: OTEL_SERVICE_NAME
  value: {{ printf "peertracker-%s" $.service | quote }}
- name: OTEL_TRACES_SAMPLER_ARG
  value: {{ .samplerRatio | quote }}
- name: OTEL_RESOURCE_ATTRIBUTES
  value: "k8s.pod.name=$(POD_NAME),k8s.namespace.name=$(POD_NAMESPACE)"
{{- range $k, $val := .env }}
- name: {{ $k }}
  value: {{ $val | quote }}
{{- end }}
{{- end }}
{{- end }}
{{- end -}}

{{/* The pod's own name and namespace, for ids and telemetry. */}}
{{- define "peertracker.podEnv" -}}
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: POD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
{{- end -}}

{{/* A map of environment variables; arg: the map. */}}
{{- define "peertracker.envMap" -}}
{{- range $k, $v := . }}
- name: {{ $k }}
  value: {{ $v | quote }}
{{- end }}
{{- end -}}

{{/* The pod-level parts every PeerTracker pod shares. */}}
{{- define "peertracker.podCommon" -}}
serviceAccountName: {{ include "peertracker.serviceAccountName" . }}
automountServiceAccountToken: false
enableServiceLinks: false
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.image.pullSecrets }}
imagePullSecrets:
  {{- range . }}
  - name: {{ . }}
  {{- end }}
{{- end }}
{{- end -}}

{{/* Scheduling of one component; arg: the component's values. */}}
{{- define "peertracker.scheduling" -}}
{{- with .nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* A PodDisruptionBudget of one component; args: root, component, maxUnavailable. */}}
{{- define "peertracker.pdb" -}}
{{- $ctx := dict "root" .root "component" .component -}}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "peertracker.componentName" $ctx }}
  labels:
    {{- include "peertracker.labels" $ctx | nindent 4 }}
spec:
  maxUnavailable: {{ .maxUnavailable }}
  selector:
    matchLabels:
      {{- include "peertracker.selectorLabels" $ctx | nindent 6 }}
{{- end -}}

{{/* A headless Service for Prometheus: each pod's /metrics by its address (the ServiceMonitor
selects the label peertracker.io/metrics); args: root, component, port, targetPort. */}}
{{- define "peertracker.metricsService" -}}
{{- $ctx := dict "root" .root "component" .component -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ include "peertracker.componentName" $ctx }}-metrics
  labels:
    {{- include "peertracker.labels" $ctx | nindent 4 }}
    peertracker.io/metrics: "true"
spec:
  type: ClusterIP
  clusterIP: None
  selector:
    {{- include "peertracker.selectorLabels" $ctx | nindent 4 }}
  ports:
    - name: http-metrics
      port: {{ .port }}
      targetPort: {{ .targetPort }}
      protocol: TCP
{{- end -}}
