"""Scrub: verify backups where they live, from the plugin or sharded over Kubernetes Jobs.

Pure parts only (no cluster client): which backups a shard owns, the credentials a target's
Secret gives the drivers, how a verification becomes a recorded outcome and metrics.
"""
