"""Refuse allocations the machine cannot hold, with a clear error before allocating.

numpy would either fail with a bare ``MemoryError`` or, with overcommit, hand out the memory
and let the kernel's OOM killer end the process (or another one) later; both are worse than a
message that names what was too large.
"""

from __future__ import annotations

import os
from pathlib import Path


def available_memory() -> int:
    """Bytes this process can still allocate: the kernel's ``MemAvailable``, lowered to what
    the cgroup (container) limit leaves, or physical memory where neither can be read."""
    limits = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                limits.append(int(line.split()[1]) * 1024)
    except (OSError, ValueError, IndexError):
        pass
    try:
        cap = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        used = Path("/sys/fs/cgroup/memory.current").read_text().strip()
        if cap != "max":
            limits.append(int(cap) - int(used))
    except (OSError, ValueError):
        pass
    if not limits:
        limits.append(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    return max(min(limits), 0)


class InsufficientMemoryError(ValueError):
    """A size the user asked for (a replay memory, a number of worlds) that this machine cannot
    hold: a bad value for this machine, refused before allocating."""


def check_memory(
    nbytes: float, what: str, hint: str, error: type[Exception] = InsufficientMemoryError
) -> None:
    """Raise ``error`` if ``nbytes`` (an estimate, bytes) exceeds :func:`available_memory`.

    ``what`` names the allocation (e.g. ``"4096 worlds of 71 entities"``) and ``hint`` says
    how to make it smaller; both go into the message.
    """
    free = available_memory()
    if nbytes > free:
        raise error(
            f"{what} would take about {_size(nbytes)}, but this machine has {_size(free)} "
            f"available; {hint}"
        )


def _size(nbytes: float) -> str:
    for unit, scale in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20)):
        if nbytes >= scale:
            return f"{nbytes / scale:.1f} {unit}"
    return f"{nbytes / 2**10:.1f} KiB"
