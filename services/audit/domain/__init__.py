"""The audit service's pure core: the hash chain and what its checkpoints sign."""
