"""The HTTP edge every service shares: problem+json errors, limits, health, metrics, auth."""
