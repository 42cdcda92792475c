"""The audit service's HTTP edge: the trail, its proofs and its reports. Read-only."""
