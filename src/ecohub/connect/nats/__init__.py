"""NATS device plane prototype: an embedded nats-server with MQTT, auth callout, revocation and JetStream ingest."""
