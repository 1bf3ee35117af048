"""Turn our own errors into one clean line on stderr and exit code 2."""
import functools
import sys

from nnunet_boundary.errors import NnUNetBoundaryError


def exits_cleanly(main):
    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except NnUNetBoundaryError as e:
            print(f"error: {e}", file=sys.stderr)
            sys.exit(2)
    return wrapper
