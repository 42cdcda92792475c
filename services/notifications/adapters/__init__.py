"""The notifications service's edges other than HTTP: webhook delivery (with its address
check), the sealing of secrets, and reading the alert log for live streams."""
