"""The one exception our commands turn into a clean ``error: ...`` message (exit code 2)."""


class NnUNetBoundaryError(Exception):
    """Bad input or set-up, stated so that the user knows what to fix."""
