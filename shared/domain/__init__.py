"""The aggregates' state and ``evolve``: how each event changes it. Pure; shared so that the
tasks service and the audit service rebuild state with the very same code."""
