"""Metric names, defined once: the adapter emits these and the CDK dashboard, alarms and scaling use them."""

NAMESPACE = "OcppAdapter"

# Gauge, per adapter task/process: chargers with an open WebSocket session. Scaling target per task.
ACTIVE_CONNECTIONS = "ActiveConnections"
# Counters, dimension "Action": OCPP messages received from / sent to chargers.
MESSAGES_IN = "MessagesIn"
MESSAGES_OUT = "MessagesOut"
# Histogram (milliseconds): charger frame received -> its event handed to MQTT.
MESSAGE_LATENCY_MS = "MessageLatencyMs"
# Histogram (milliseconds): back-end request received on MQTT -> response published.
REQUEST_LATENCY_MS = "RequestLatencyMs"
# Counter, dimension "Kind": protocol errors, validation failures, handler failures.
ERRORS = "Errors"
# Counter: MQTT connection (re)establishments after a loss.
MQTT_RECONNECTS = "MqttReconnects"
# Counter: events written to the durable outbox because the broker did not acknowledge in time.
OUTBOX_WRITES = "OutboxWrites"

# Every metric name above, for checks that emitters and the CDK dashboards agree.
METRIC_NAMES = frozenset({
    ACTIVE_CONNECTIONS, MESSAGES_IN, MESSAGES_OUT, MESSAGE_LATENCY_MS, REQUEST_LATENCY_MS, ERRORS,
    MQTT_RECONNECTS, OUTBOX_WRITES,
})

# Dimension names. SERVICE identifies the deployment (one value per ECS service), so CloudWatch can average
# a per-task gauge across tasks; it reaches the process through DIMENSIONS_ENV.
SERVICE_DIMENSION = "Service"
ACTION_DIMENSION = "Action"
KIND_DIMENSION = "Kind"
# Environment variable of default dimensions added to every CloudWatch record: "Service=ocpp-adapter,K=V".
DIMENSIONS_ENV = "OCPP_METRICS_DIMENSIONS"
