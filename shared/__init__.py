"""What every policytrack service agrees on: the event contract, Kafka plumbing, settings, logging."""
