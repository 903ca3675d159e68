"""The backupstore: Longhorn's backing-image backup layout, read and written through drivers.

Layers, bottom up: drivers/base.py (the protocol) < the drivers < layout, compression,
catalog, locks, block I/O < backup, restore, verify, admin. Nothing here imports the rule
set or the manifest side (tests/test_layering.py).
"""
