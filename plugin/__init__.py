"""`kubectl longhorn-bi`: a thin click shell over the engine."""
