"""The notifications service's HTTP edge: subscriptions and the live alert stream."""
