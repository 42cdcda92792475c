"""The event contract: codes, payloads of every event type, the CloudEvents envelope and its Kafka binding."""
