"""Kafka plumbing on aiokafka: topics, the event producer and the consumer runner."""
