"""The three policytrack services; each is self-contained and imports only ``shared``."""
