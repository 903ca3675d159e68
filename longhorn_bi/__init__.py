"""longhorn-bi: safe backup and restore of Longhorn backing images."""

__version__ = "0.1.0"
