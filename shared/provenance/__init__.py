"""Who wrote what: the project's signing keys and the public keys it trusts, the proof every
record carries of its writer, and the check every reader makes of it."""
