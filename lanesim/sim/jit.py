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

import sys

from numba import njit
from numba.core import event

_OPTIONS = dict(cache=True, _nrt=False, no_cfunc_wrapper=True, error_model="numpy")
kernel = njit(**_OPTIONS)
kernel_nogil = njit(nogil=True, **_OPTIONS)
# For a small kernel, or one part of a larger one with a single caller: numba inlines its code
# where it is called instead of compiling and optimizing it on its own (about 0.1 s of the
# first step's cold compile per function). A kernel compiled on its own is optimized and
# turned into machine code once for itself and again in every kernel that calls it, so a large
# part with one caller (the world step in run_worlds) costs no more inlined, and runs faster; a
# helper with several callers is cheaper compiled once, since each caller would type it anew.
# Not everything in one function, though: LLVM's time grows faster than the function
# (change_lanes, recycle and collide inlined as well: 3.8 s for run_worlds alone against 2.7 s
# for the four, measured).
kernel_inline = njit(inline="always", **_OPTIONS)

def compiled_for(dispatcher, *args):
    """``dispatcher``'s compiled function for the types of ``args`` (compiled or loaded from
    the cache now if need be), as a plain callable: calling it skips numba's type dispatch,
    which types every tuple argument in Python (3 µs a call for the network step's plain
    tuples of arrays). It does not check its arguments: only for calls whose every argument
    keeps the type of the one given here: the same dtype, number of dimensions, memory layout
    (C order where the example was) and writeability; the same state arrays, ints where ints
    were. A Fortran-order or strided array where a C-order one was typed is misread, silently."""
    from numba import typeof
    from numba.core.typing.typeof import Purpose

    return dispatcher.compile(tuple(typeof(a, Purpose.argument) for a in args))


COLD_START_NOTICE = (
    "lanesim: compiling the simulator's kernels for this machine (once, up to about half a minute; "
    "later runs load them from the cache). To compile them ahead: python -m lanesim.warmup"
)


class _ColdStartNotice(event.Listener):
    """Prints :data:`COLD_START_NOTICE` on stderr once per process, when the first lanesim
    kernel compiles: a first run after installing otherwise looks hung for tens of seconds.
    numba raises ``numba:compile`` only on a real compile, never on a load from the cache."""

    enabled = True

    def on_start(self, ev) -> None:
        if self.enabled and ev.data["dispatcher"].py_func.__module__.startswith("lanesim."):
            self.enabled = False
            print(COLD_START_NOTICE, file=sys.stderr, flush=True)

    def on_end(self, ev) -> None:
        pass


cold_start_notice = _ColdStartNotice()
event.register("numba:compile", cold_start_notice)
