"""The audit service's edges other than HTTP and Kafka: the store and the signing keys."""
