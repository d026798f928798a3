{{/* Names and labels. */}}
{{- define "betrace.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "betrace.fullname" -}}
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

{{- define "betrace.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "betrace.selectorLabels" -}}
app.kubernetes.io/name: {{ include "betrace.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "betrace.labels" -}}
helm.sh/chart: {{ include "betrace.chart" . }}
{{ include "betrace.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: betrace
{{- end -}}

{{- define "betrace.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "betrace.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "betrace.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* betrace's default ports (src/config/schema.ts); the container always listens on them. */}}
{{- define "betrace.port.grpc" -}}4317{{- end -}}
{{- define "betrace.port.http" -}}4318{{- end -}}
{{- define "betrace.port.api" -}}12011{{- end -}}

{{- define "betrace.tokenSecretName" -}}
{{- default (printf "%s-api-token" (include "betrace.fullname" .)) .Values.auth.existingSecret -}}
{{- end -}}
{{- define "betrace.tokenSecretKey" -}}
{{- if .Values.auth.existingSecret -}}{{ .Values.auth.existingSecretKey }}{{- else -}}token{{- end -}}
{{- end -}}

{{/* The receiver's spool volume (receiver.spool.dir), under data_dir. */}}
{{- define "betrace.spoolDir" -}}/var/lib/betrace/spool{{- end -}}

{{- define "betrace.rulesConfigMapName" -}}
{{- default (printf "%s-rules" (include "betrace.fullname" .)) .Values.rulesExistingConfigMap -}}
{{- end -}}

{{/* Bytes of a size, a Kubernetes quantity (10Gi, 500M) or betrace's unit (8GiB, 512MiB, 1GB), as a decimal string. */}}
{{- define "betrace.bytes" -}}
{{- $s := toString . | trim -}}
{{- $n := regexFind "^[0-9]+([.][0-9]+)?" $s -}}
{{- $unit := trimPrefix $n $s | trim | trimSuffix "B" | lower -}}
{{- $scale := dict "" 1.0 "k" 1e3 "m" 1e6 "g" 1e9 "t" 1e12 "ki" 1024.0 "mi" 1048576.0 "gi" 1073741824.0 "ti" 1099511627776.0 -}}
{{- if or (eq $n "") (not (hasKey $scale $unit)) -}}
{{- fail (printf "betrace: %q is not a size (e.g. 10Gi or 8GiB)" $s) -}}
{{- end -}}
{{- printf "%.0f" (mulf (float64 $n) (get $scale $unit)) -}}
{{- end -}}

{{/* Values that cannot work: fail the render with the key to set. */}}
{{- define "betrace.validate" -}}
{{- if .Values.allInOne.enabled -}}
{{- $history := include "betrace.bytes" .Values.allInOne.history.maxBytes | float64 -}}
{{- $volume := include "betrace.bytes" .Values.allInOne.persistence.size | float64 -}}
{{- if ge $history $volume -}}
{{- fail (printf "betrace: allInOne.history.maxBytes (%s) does not fit allInOne.persistence.size (%s), which also holds violations.jsonl and the API's rules: set maxBytes below the volume's size (about 80%% of it)" (toString .Values.allInOne.history.maxBytes) (toString .Values.allInOne.persistence.size)) -}}
{{- end -}}
{{- end -}}
{{- if and (not .Values.auth.token) (not .Values.auth.existingSecret) -}}
{{- fail "betrace: the admin API listens on every pod (port 12011) and needs a bearer token: set auth.token or auth.existingSecret" -}}
{{- end -}}
{{- if and .Values.allInOne.enabled .Values.receiver.spool.enabled -}}
{{- fail "betrace: receiver.spool spools exports in front of Kafka: it needs split roles (allInOne.enabled: false)" -}}
{{- end -}}
{{- if not .Values.allInOne.enabled -}}
{{- if not (or .Values.receiver.enabled .Values.worker.enabled .Values.forwarder.enabled .Values.api.enabled) -}}
{{- fail "betrace: allInOne.enabled is false and no role is enabled: enable receiver, worker, forwarder or api" -}}
{{- end -}}
{{- if not .Values.kafka.brokers -}}
{{- fail "betrace: split roles (allInOne.enabled: false) talk through Kafka: set kafka.brokers" -}}
{{- end -}}
{{- if and (ne .Values.kafka.sasl.mechanism "none") (not .Values.kafka.sasl.passwordSecret) -}}
{{- fail "betrace: kafka.sasl.mechanism is set: give kafka.sasl.passwordSecret (a Secret holding the password)" -}}
{{- end -}}
{{- if and (ne .Values.kafka.sasl.mechanism "none") (not .Values.kafka.sasl.username) -}}
{{- fail "betrace: kafka.sasl.mechanism is set: give kafka.sasl.username" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
The betrace configuration file. The chart manages the listen addresses (all interfaces,
default ports), the transport (all-in-one: with its history's max_age and max_bytes), rules.paths,
api.token_file, data_dir and shutdown_timeout; .Values.config supplies every other key.
*/}}
{{- define "betrace.config" -}}
{{- $managed := dict
  "receiver" (dict
    "grpc" (dict "endpoint" (printf "0.0.0.0:%s" (include "betrace.port.grpc" .)))
    "http" (dict "endpoint" (printf "0.0.0.0:%s" (include "betrace.port.http" .))))
  "api" (dict
    "endpoint" (printf "0.0.0.0:%s" (include "betrace.port.api" .))
    "token_file" "/etc/betrace/secrets/api-token")
  "rules" (dict "paths" (list "/etc/betrace/rules/*.yaml" "/etc/betrace/rules/*.yml"))
  "data_dir" "/var/lib/betrace"
  "shutdown_timeout" .Values.shutdownTimeout -}}
{{- if .Values.allInOne.enabled -}}
{{- $_ := set $managed "transport" (dict "kind" "embedded" "history" (dict "max_age" .Values.allInOne.history.maxAge "max_bytes" .Values.allInOne.history.maxBytes)) -}}
{{- else -}}
{{- $tls := dict "enabled" .Values.kafka.tls.enabled -}}
{{- if and .Values.kafka.tls.enabled .Values.kafka.tls.caSecret -}}
{{- $_ := set $tls "ca_file" "/etc/betrace/kafka/ca/ca.crt" -}}
{{- end -}}
{{- if and .Values.kafka.tls.enabled .Values.kafka.tls.clientSecret -}}
{{- $_ := set $tls "cert_file" "/etc/betrace/kafka/client/tls.crt" -}}
{{- $_ := set $tls "key_file" "/etc/betrace/kafka/client/tls.key" -}}
{{- end -}}
{{- $sasl := dict "mechanism" .Values.kafka.sasl.mechanism -}}
{{- if ne .Values.kafka.sasl.mechanism "none" -}}
{{- $_ := set $sasl "username" .Values.kafka.sasl.username -}}
{{- end -}}
{{- $_ := set $managed "transport" (dict "kind" "kafka" "kafka" (dict "brokers" .Values.kafka.brokers "group_protocol" .Values.kafka.groupProtocol "tls" $tls "sasl" $sasl)) -}}
{{- end -}}
{{- if and (not .Values.allInOne.enabled) .Values.receiver.spool.enabled -}}
{{- $spool := dict "enabled" true "dir" (include "betrace.spoolDir" .) "max_bytes" .Values.receiver.spool.maxBytes "shutdown_timeout" .Values.receiver.spool.shutdownTimeout -}}
{{- $_ := set $managed.receiver "spool" $spool -}}
{{- end -}}
{{- if .Values.downstream.endpoint -}}
{{- $_ := set $managed "downstream" (dict "endpoint" .Values.downstream.endpoint) -}}
{{- end -}}
{{- toYaml (mustMergeOverwrite (deepCopy .Values.config) $managed) -}}
{{- end -}}

{{/*
One betrace Deployment. Arguments (dict): root, component (allinone, receiver, worker,
forwarder, api), roles (comma-separated), values (the component's values), replicas (or
nil under an HPA).
*/}}
{{- define "betrace.deployment" -}}
{{- $root := .root -}}
{{- $v := .values -}}
{{- $fullname := include "betrace.fullname" $root -}}
{{- $spool := and (eq .component "receiver") $v.spool.enabled -}}
{{- /* A claim per pod that a replacement pod gets again: a StatefulSet. */ -}}
{{- $statefulSet := and $spool $v.spool.persistence.enabled -}}
apiVersion: apps/v1
kind: {{ ternary "StatefulSet" "Deployment" $statefulSet }}
metadata:
  name: {{ printf "%s-%s" $fullname .component | trunc 63 | trimSuffix "-" }}
  labels:
    {{- include "betrace.labels" $root | nindent 4 }}
    app.kubernetes.io/component: {{ .component }}
spec:
  {{- if not (kindIs "invalid" .replicas) }}
  replicas: {{ .replicas }}
  {{- end }}
  revisionHistoryLimit: 5
  {{- if $statefulSet }}
  serviceName: {{ printf "%s-%s" $fullname .component | trunc 63 | trimSuffix "-" }}
  podManagementPolicy: Parallel
  {{- end }}
  {{- if .recreate }}
  strategy:
    type: Recreate
  {{- end }}
  selector:
    matchLabels:
      {{- include "betrace.selectorLabels" $root | nindent 6 }}
      app.kubernetes.io/component: {{ .component }}
  template:
    metadata:
      labels:
        {{- include "betrace.selectorLabels" $root | nindent 8 }}
        app.kubernetes.io/component: {{ .component }}
      annotations:
        # The config is read at start: roll the pods when it changes. Rules are not
        # here: betrace reloads rule files in place.
        checksum/config: {{ include "betrace.config" $root | sha256sum }}
        prometheus.io/scrape: "true"
        prometheus.io/port: {{ include "betrace.port.api" $root | quote }}
        prometheus.io/path: /metrics
        {{- with $v.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      serviceAccountName: {{ include "betrace.serviceAccountName" $root }}
      automountServiceAccountToken: false
      {{- with $root.Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      securityContext:
        {{- toYaml $root.Values.podSecurityContext | nindent 8 }}
      terminationGracePeriodSeconds: {{ $root.Values.terminationGracePeriodSeconds }}
      containers:
        - name: betrace
          image: {{ include "betrace.image" $root | quote }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          args: ["run", "--config", "/etc/betrace/config/betrace.yaml", "--roles", {{ .roles | quote }}]
          ports:
            {{- if has "receiver" (splitList "," .roles) }}
            - name: otlp-grpc
              containerPort: {{ include "betrace.port.grpc" $root }}
              protocol: TCP
            - name: otlp-http
              containerPort: {{ include "betrace.port.http" $root }}
              protocol: TCP
            {{- end }}
            - name: admin
              containerPort: {{ include "betrace.port.api" $root }}
              protocol: TCP
          {{- with include "betrace.env" $root }}
          env:
            {{- . | nindent 12 }}
          {{- end }}
          # /health answers once every role has started (Kafka connected, topics ready):
          # the startup probe gives that up to 5 minutes before liveness takes over.
          startupProbe:
            httpGet: { path: /health, port: admin }
            periodSeconds: 5
            failureThreshold: 60
          livenessProbe:
            httpGet: { path: /health, port: admin }
            periodSeconds: 10
            timeoutSeconds: 5
            failureThreshold: 6
          readinessProbe:
            httpGet: { path: /ready, port: admin }
            periodSeconds: 5
            timeoutSeconds: 5
            failureThreshold: 3
          resources:
            {{- toYaml $v.resources | nindent 12 }}
          securityContext:
            {{- toYaml $root.Values.securityContext | nindent 12 }}
          volumeMounts:
            - { name: config, mountPath: /etc/betrace/config, readOnly: true }
            - { name: rules, mountPath: /etc/betrace/rules, readOnly: true }
            - { name: api-token, mountPath: /etc/betrace/secrets, readOnly: true }
            - { name: data, mountPath: /var/lib/betrace }
            - { name: tmp, mountPath: /tmp }
            {{- if $spool }}
            - { name: spool, mountPath: {{ include "betrace.spoolDir" $root }} }
            {{- end }}
            {{- include "betrace.kafkaTlsMounts" $root | nindent 12 }}
      volumes:
        - name: config
          configMap:
            name: {{ $fullname }}-config
        - name: rules
          configMap:
            name: {{ include "betrace.rulesConfigMapName" $root }}
        - name: api-token
          secret:
            secretName: {{ include "betrace.tokenSecretName" $root }}
            items:
              - key: {{ include "betrace.tokenSecretKey" $root }}
                path: api-token
        {{- if .pvc }}
        - name: data
          persistentVolumeClaim:
            claimName: {{ .pvc }}
        {{- else }}
        - name: data
          emptyDir:
            {{- if eq .component "allinone" }}
            sizeLimit: {{ $root.Values.allInOne.persistence.size }}
            {{- else }}
            {}
            {{- end }}
        {{- end }}
        - name: tmp
          emptyDir:
            sizeLimit: 256Mi
        {{- if and $spool (not $statefulSet) }}
        - name: spool
          emptyDir:
            sizeLimit: {{ $v.spool.size }}
        {{- end }}
        {{- include "betrace.kafkaTlsVolumes" $root | nindent 8 }}
      {{- with $v.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
  {{- if $statefulSet }}
  volumeClaimTemplates:
    - metadata:
        name: spool
        labels:
          {{- include "betrace.labels" $root | nindent 10 }}
          app.kubernetes.io/component: {{ .component }}
      spec:
        accessModes:
          {{- toYaml $v.spool.persistence.accessModes | nindent 10 }}
        {{- with $v.spool.persistence.storageClassName }}
        storageClassName: {{ . }}
        {{- end }}
        resources:
          requests:
            storage: {{ $v.spool.size }}
  {{- end }}
{{- end -}}

{{/* PromQL label matchers selecting this release's series. */}}
{{- define "betrace.promSelector" -}}
{{- if .Values.prometheusRule.selector -}}
{{- .Values.prometheusRule.selector -}}
{{- else -}}
{{- printf "job=\"%s-metrics\", namespace=\"%s\"" (include "betrace.fullname" .) .Release.Namespace -}}
{{- end -}}
{{- end -}}

{{/* Environment of the betrace container: secrets passed as variables, then extraEnv. */}}
{{- define "betrace.env" -}}
{{- $env := list -}}
{{- if and (not .Values.allInOne.enabled) (ne .Values.kafka.sasl.mechanism "none") -}}
{{- $env = append $env (dict "name" "BETRACE_KAFKA_SASL_PASSWORD" "valueFrom" (dict "secretKeyRef" (dict "name" .Values.kafka.sasl.passwordSecret "key" .Values.kafka.sasl.passwordKey))) -}}
{{- end -}}
{{- if .Values.downstream.headersSecret -}}
{{- $env = append $env (dict "name" "OTEL_EXPORTER_OTLP_HEADERS" "valueFrom" (dict "secretKeyRef" (dict "name" .Values.downstream.headersSecret "key" .Values.downstream.headersSecretKey))) -}}
{{- end -}}
{{- $env = concat $env .Values.extraEnv -}}
{{- if $env -}}
{{- toYaml $env -}}
{{- end -}}
{{- end -}}

{{/* Mounts of the Kafka TLS secrets (split roles with kafka.tls). */}}
{{- define "betrace.kafkaTlsMounts" -}}
{{- if and (not .Values.allInOne.enabled) .Values.kafka.tls.enabled .Values.kafka.tls.caSecret }}
- { name: kafka-ca, mountPath: /etc/betrace/kafka/ca, readOnly: true }
{{- end }}
{{- if and (not .Values.allInOne.enabled) .Values.kafka.tls.enabled .Values.kafka.tls.clientSecret }}
- { name: kafka-client, mountPath: /etc/betrace/kafka/client, readOnly: true }
{{- end }}
{{- end -}}

{{/* Volumes of the Kafka TLS secrets (split roles with kafka.tls). */}}
{{- define "betrace.kafkaTlsVolumes" -}}
{{- if and (not .Values.allInOne.enabled) .Values.kafka.tls.enabled .Values.kafka.tls.caSecret }}
- name: kafka-ca
  secret:
    secretName: {{ .Values.kafka.tls.caSecret }}
    items:
      - { key: {{ .Values.kafka.tls.caKey | quote }}, path: ca.crt }
{{- end }}
{{- if and (not .Values.allInOne.enabled) .Values.kafka.tls.enabled .Values.kafka.tls.clientSecret }}
- name: kafka-client
  secret:
    secretName: {{ .Values.kafka.tls.clientSecret }}
    items:
      - { key: {{ .Values.kafka.tls.clientCertKey | quote }}, path: tls.crt }
      - { key: {{ .Values.kafka.tls.clientKeyKey | quote }}, path: tls.key }
{{- end }}
{{- end -}}
