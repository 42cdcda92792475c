"""The ``policytrack`` operator command line."""
