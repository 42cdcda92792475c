"""The tasks service's pure core: the commands departments send and the rules that decide
them (state comes from ``shared.domain``, which the audit service replays with too)."""
