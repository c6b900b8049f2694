"""Profile the compiled simulator step by function with Linux ``perf``.

numba's machine code has no symbols that ``perf`` can read, so its samples land on bare
addresses. This script steps one of ``bench_env``'s cases (``world.advance(15)`` of its single
env, over and over) and then writes ``/tmp/perf-<pid>.map``, the file in which ``perf`` looks
up the names of just-in-time code, from numba's JIT engine. Run it under ``perf``::

    perf record -e cpu-clock -F 10000 -o /tmp/perf.data \\
        python scripts/profile_kernels.py --case a --advances 40000
    perf report -i /tmp/perf.data --sort sym -n | head -40

``cpu-clock`` is a software event: it works on VMs without hardware counters. Sample counts of
two checkouts compare where their time goes (issue #16's one-road step was bisected so; see
docs/bench_env.md). Functions inlined into another show as that one.
"""

from __future__ import annotations

import argparse
import os
import re
import sys


def write_perf_map(path: str) -> int:
    """Write every function numba's JIT engine defined in this process, as ``perf``'s map
    format (hex start, hex size, name), to ``path``; returns how many. A function's size is
    taken as the distance to the next one (numba keeps no sizes)."""
    from lanesim.sim import step

    compiled = next(iter(step.run_worlds.overloads.values()), None)
    if compiled is None:
        raise RuntimeError("nothing compiled yet: step a world first")
    engine = compiled.library.codegen._engine
    names = {}
    for name in list(engine._defined_symbols):
        address = engine.get_function_address(name)
        if address:
            names[address] = name
    starts = sorted(names)
    with open(path, "w") as out:
        for i, start in enumerate(starts):
            gap = starts[i + 1] - start if i + 1 < len(starts) else 4096
            size = gap if gap < 1 << 20 else 4096
            # numba's mangled names carry a hash of the types after the function's own name.
            short = re.sub(r"B\d+v\d+B.*", "", names[start])
            out.write(f"{start:x} {size:x} {short}\n")
    return len(starts)


def main(argv: list[str] | None = None) -> int:
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    from lanesim_bench.bench_env import CASES

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", default="a", choices=sorted(CASES),
                    help="bench_env's case whose single env is stepped (default a)")
    ap.add_argument("--advances", type=int, default=40_000,
                    help="world.advance(15) calls, 1 to 10,000,000 (default 40,000)")
    args = ap.parse_args(argv)
    if not 1 <= args.advances <= 10_000_000:
        ap.error(f"--advances must be from 1 to 10,000,000, got {args.advances}")

    import gymnasium as gym

    import lanesim  # noqa: F401  (registers the ids)

    case = CASES[args.case]
    env = gym.make(case.env_id, **case.options)
    env.reset(seed=0)
    world = env.unwrapped.world
    for _ in range(args.advances):
        world.advance(15)
    path = f"/tmp/perf-{os.getpid()}.map"
    count = write_perf_map(path)
    print(f"{args.advances} advances of case ({args.case}); {count} compiled functions named in "
          f"{path}", file=sys.stderr)
    env.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
