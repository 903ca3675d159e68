"""The engine: domain model, the one rule set, and Longhorn's backupstore format.

Nothing here imports click, aiohttp or the Kubernetes client; the shells do.
"""
