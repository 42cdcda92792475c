"""The tasks service's HTTP edge: routers over the application service, wired in ``app.py``."""
