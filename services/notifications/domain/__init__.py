"""The notifications service's pure core: the deadline schedule and the rules of subscriptions."""
