"""Large buffers go back to the system when freed, in the serving process.

glibc's allocator serves a large block (a megabyte request body, its JSON text, a recorded
answer) from a separate mapping, released when freed — until the first such block is freed:
then it raises that threshold to the block's size, and every later block of that size comes
from the heap, where freed memory mostly stays with the process. A server that reads,
parses and records megabyte bodies one after the other then grows by what its allocator
kept, not by what it holds: the memory scenario (``tests/reliability/memory.py``) grew by
65 MB, 33 MB of it kept after freeing. Fixing the threshold at :data:`LARGE` keeps large
blocks in mappings of their own, returned when freed. Smaller blocks (every replayed
response of usual size) are untouched.
"""

from __future__ import annotations

import ctypes
import os
import sys

#: glibc's ``mallopt`` parameter for the threshold (``M_MMAP_THRESHOLD``).
M_MMAP_THRESHOLD = -3
#: Blocks of at least this many bytes get a mapping of their own.
LARGE = 256 * 1024
#: The environment variable through which glibc takes the same setting: when set, it wins.
ENVIRONMENT = "MALLOC_MMAP_THRESHOLD_"


def return_large_blocks() -> bool:
    """Fix the allocator's threshold at :data:`LARGE` when the C library is glibc and the
    environment does not set it already; whether it was done."""
    if sys.platform != "linux" or ENVIRONMENT in os.environ:
        return False
    try:
        libc = ctypes.CDLL(None)
    except OSError:  # pragma: no cover - every Linux process has its C library loaded
        return False
    if not hasattr(libc, "gnu_get_libc_version"):  # musl and others: their own policy
        return False
    return bool(libc.mallopt(M_MMAP_THRESHOLD, LARGE))
