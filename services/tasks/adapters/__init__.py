"""The tasks service's edges to the outside other than HTTP: the log it appends to, what it
rebuilds from it, and the command topic."""
