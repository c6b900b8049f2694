"""The decorators for the simulator's compiled hot path.

``kernel`` is ``numba.njit`` with the on-disk cache and without numba's reference counting
(``_nrt=False``). Every function it compiles allocates nothing (scratch space is passed in), so
reference counting has nothing to manage, yet with it every array a helper receives costs two
atomic operations: measured on the traffic step, IDM over 50 cars took 4.2 µs per world with
it and 0.6 µs without. Functions that allocate keep plain ``njit``.

Two more options shorten the one-time compile (numba compiles each function once per machine
and the cache makes every later process load it): no C-callable wrapper
(``no_cfunc_wrapper``; nothing here takes a kernel's address) and numpy's error model, under
which a division by zero gives inf or nan as in numpy instead of compiling a Python
``ZeroDivisionError`` branch into every division. Together about a fifth of the first step's
cold compile; the simulation is bit-for-bit the same.
"""

from __future__ import annotations

from numba import njit

_OPTIONS = dict(cache=True, _nrt=False, no_cfunc_wrapper=True, error_model="numpy")
kernel = njit(**_OPTIONS)
kernel_nogil = njit(nogil=True, **_OPTIONS)
