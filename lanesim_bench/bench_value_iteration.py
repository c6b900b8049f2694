"""Benchmark lanesim's value iteration against quantecon's ``DiscreteDP`` value iteration.

Problem: a random sparse MDP, by default 100,000 states, 5 actions, 4 distinct random
successors per (s, a) with random normalised probabilities, rewards uniform on [0, 1),
gamma 0.95, tol 1e-6, seed 0. Both solvers give the same guarantee: the returned policy
is within ``tol`` of optimal in sup-norm. quantecon's ``solve(method="value_iteration",
epsilon=tol)`` stops when ``||v_{n+1} - v_n|| < epsilon (1 - beta) / (2 beta)`` and returns
the ``v_{n+1}``-greedy policy, which is ``epsilon``-optimal (Puterman 2005, section 6.3), with
``v_{n+1}`` within ``epsilon / 2`` of ``V*``; lanesim uses the span bound (see
``agents/value_iteration.py``) and also returns ``V`` within ``tol / 2`` of ``V*``.
quantecon's ``modified_policy_iteration`` (span rule, same guarantee) is timed as well, for
context.

quantecon is not a lanesim dependency. It runs in a subprocess under its own venv
(``--venv``, by default in the user's cache), created once from ``requirements-vi.txt``
(recreated when that file changes); this module runs there by its path, importing only numpy
on that side. The MDP travels as an ``.npz`` file in a temporary directory.
Numba compile time is excluded by first solving a tiny MDP of the same form.

Run::

    python -m lanesim_bench.bench_value_iteration
    python -m lanesim_bench.bench_value_iteration --write docs/value_iteration.md

Exit status 1 if a check fails: every solver's policy must be ``tol``-optimal and its
``V`` within ``tol / 2`` of ``V*``, judged by evaluating the policies and bracketing ``V*``
independently of the solvers' code.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Only numpy at the top: the quantecon venv runs this file by its path, without lanesim or
# lanesim_bench, so lanesim's side imports them inside its functions.
import numpy as np

# quantecon methods timed. Both give an epsilon-optimal policy: "value_iteration" with
# the sup-norm rule (the comparison asked for), "modified_policy_iteration" (k = 20
# partial-evaluation sweeps per improvement) with the span rule, for context.
QE_METHODS = ("value_iteration", "modified_policy_iteration")


def random_sparse_mdp(
    n_states: int, n_actions: int, n_succ: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Random MDP as CSR parts of ``P`` ``(S*A, S)`` (row ``s*A + a``) and ``R`` ``(S, A)``.

    Returns:
        ``(data, indices, indptr, R)``; each row has ``n_succ`` distinct sorted successors.
    """
    rng = np.random.default_rng(seed)
    n_rows = n_states * n_actions
    succ = rng.integers(0, n_states, size=(n_rows, n_succ))
    while True:  # redraw the (rare) rows with a repeated successor
        succ.sort(axis=1)
        dup = (succ[:, 1:] == succ[:, :-1]).any(axis=1)
        if not dup.any():
            break
        succ[dup] = rng.integers(0, n_states, size=(int(dup.sum()), n_succ))
    prob = rng.random((n_rows, n_succ))
    prob /= prob.sum(axis=1, keepdims=True)
    R = rng.random((n_states, n_actions))
    indptr = np.arange(0, n_rows * n_succ + 1, n_succ)
    return prob.ravel(), succ.ravel().astype(np.int32), indptr.astype(np.int32), R


# --- quantecon side (runs inside the quantecon venv; imports no lanesim code) ----------


def quantecon_worker(mdp_path: str, out_path: str) -> None:
    """Load the MDP, warm numba up, time ``DiscreteDP.solve`` and save the results."""
    import quantecon
    import scipy.sparse as sp
    from quantecon.markov import DiscreteDP

    z = np.load(mdp_path)
    gamma, tol = float(z["gamma"]), float(z["tol"])
    repeats, max_iter = int(z["repeats"]), int(z["max_iter"])

    def build(data, indices, indptr, R):
        n_states, n_actions = R.shape
        Q = sp.csr_matrix((data, indices, indptr), shape=(n_states * n_actions, n_states))
        s_indices = np.repeat(np.arange(n_states), n_actions)
        a_indices = np.tile(np.arange(n_actions), n_states)
        return DiscreteDP(R.ravel(), Q, gamma, s_indices, a_indices)

    # Same (sparse state-action pair) form and dtypes, so every jitted kernel compiles here.
    warm = build(*random_sparse_mdp(50, 5, 4, seed=1))
    for method in QE_METHODS:
        warm.solve(method=method, epsilon=tol, max_iter=max_iter)

    t0 = time.perf_counter()
    ddp = build(z["data"], z["indices"], z["indptr"], z["R"])
    out = {"build_s": time.perf_counter() - t0, "version": quantecon.__version__}
    for method in QE_METHODS:
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            # max_iter must be raised: quantecon's default of 250 would stop value
            # iteration on this problem (338 sweeps) short of its epsilon guarantee.
            res = ddp.solve(method=method, epsilon=tol, max_iter=max_iter)
            times.append(time.perf_counter() - t0)
        out |= {
            f"{method}.v": res.v,
            f"{method}.sigma": res.sigma,
            f"{method}.num_iter": res.num_iter,
            f"{method}.times": np.array(times),
        }
    np.savez(out_path, **out)


def run_quantecon(parts, args) -> dict:
    from lanesim_bench.common import VI_REQUIREMENTS, VI_VENV, ensure_venv

    python = ensure_venv(Path(args.venv or VI_VENV), VI_REQUIREMENTS)
    data, indices, indptr, R = parts
    with tempfile.TemporaryDirectory() as tmp:
        mdp_path, out_path = Path(tmp) / "mdp.npz", Path(tmp) / "out.npz"
        np.savez(
            mdp_path,
            data=data,
            indices=indices,
            indptr=indptr,
            R=R,
            gamma=args.gamma,
            tol=args.tol,
            repeats=args.repeats,
            max_iter=args.max_iter,
        )
        subprocess.run(
            [str(python), __file__, "--quantecon-worker", str(mdp_path), str(out_path)],
            check=True,
        )
        with np.load(out_path) as z:
            return {k: z[k] for k in z.files}


# --- lanesim side and checks -------------------------------------------------------------


def policy_value(P, R, gamma: float, policy: np.ndarray, v0: np.ndarray, acc: float):
    """Value of a deterministic policy ``(S,)`` to sup-norm accuracy ``acc``.

    Iterates ``v <- R_pi + gamma P_pi v`` from ``v0`` on the ``(S, S)`` policy sub-matrix,
    until the standard bound ``gamma / (1 - gamma) ||v_{k+1} - v_k|| <= acc`` holds.
    """
    n_states, n_actions = R.shape
    rows = np.arange(n_states) * n_actions + policy
    P_pi, R_pi = P[rows], R.reshape(-1)[rows]
    v = v0.copy()
    while True:
        nv = R_pi + gamma * (P_pi @ v)
        step = float(np.abs(nv - v).max())
        v = nv
        if gamma / (1 - gamma) * step <= acc:
            return v


def optimal_value_upper_bound(P, R, gamma: float, v: np.ndarray) -> np.ndarray:
    """``U >= V*`` from any ``v`` ``(S,)``: ``V* <= T v + gamma / (1 - gamma) max(T v - v)``.

    The textbook bound (Puterman 2005, section 6.6), written out here with plain NumPy so
    that the checks do not rely on the solvers' own code.
    """
    n_states, n_actions = R.shape
    tv = (R.reshape(-1) + gamma * (P @ v)).reshape(n_states, n_actions).max(axis=1)
    return tv + gamma / (1 - gamma) * float((tv - v).max())


def check_solutions(P, R, gamma: float, tol: float, solutions: dict) -> bool:
    """Check every ``name -> (V, policy)`` against independent bounds on ``V*``.

    Each policy is evaluated to accuracy ``acc`` (``V^pi``); ``V*`` is bracketed by
    ``max_pi V^pi - acc <= V* <= min_pi U(V^pi)``. A solver passes when its policy is
    ``tol``-optimal and its ``V`` within ``tol / 2`` of ``V*`` by that bracket.
    """
    acc = 1e-10
    start = next(iter(solutions.values()))[0]
    values = {
        name: policy_value(P, R, gamma, pol, start, acc) for name, (_, pol) in solutions.items()
    }
    lower = np.max(list(values.values()), axis=0) - acc
    upper = np.min([optimal_value_upper_bound(P, R, gamma, v) for v in values.values()], axis=0)
    print(f"V* bracket from the policies' values: width <= {float((upper - lower).max()):.2g}")
    ok = True
    for name, (V, _) in solutions.items():
        gap = float((upper - values[name]).max()) + acc
        v_err = float(max((V - lower).max(), (upper - V).max()))
        passed = gap <= tol and v_err <= tol / 2
        ok &= passed
        print(
            f"  {name:<36} policy suboptimality <= {gap:.2g} (<= tol), "
            f"|V - V*| <= {v_err:.2g} (<= tol/2): {'ok' if passed else 'FAIL'}"
        )
    return ok


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lanesim_bench.bench_value_iteration",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--states", type=int, default=100_000)
    ap.add_argument("--actions", type=int, default=5)
    ap.add_argument("--successors", type=int, default=4)
    ap.add_argument("--gamma", type=float, default=0.95)
    ap.add_argument("--tol", type=float, default=1e-6)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--max-iter", type=int, default=10_000)
    ap.add_argument("--venv", default=None,
                    help="venv for quantecon, made on first use (default: in the user's cache)")
    ap.add_argument("--write", metavar="FILE.md",
                    help="also write the output to this file (docs/value_iteration.md is this)")
    ap.add_argument("--no-quantecon", action="store_true", help="time lanesim only")
    ap.add_argument(
        "--quantecon-worker", nargs=2, metavar=("MDP_NPZ", "OUT_NPZ"), help=argparse.SUPPRESS
    )
    args = ap.parse_args(argv)
    if args.quantecon_worker:
        quantecon_worker(*args.quantecon_worker)
        return 0
    from lanesim_bench.common import command, printed_report

    argv = sys.argv[1:] if argv is None else argv
    return printed_report(args.write, command("lanesim_bench.bench_value_iteration", argv),
                          lambda: measure(args))


def measure(args) -> int:
    """Solve the MDP with every solver, check the solutions and print the table; the exit
    status (1 if a check failed)."""
    import scipy.sparse as sp

    from agents.mdp import FiniteMDP
    from agents.value_iteration import value_iteration

    S, A, tol, gamma = args.states, args.actions, args.tol, args.gamma
    print(
        f"random sparse MDP: S={S:,} A={A} successors={args.successors} gamma={gamma} "
        f"tol={tol:g} seed={args.seed}; median of {args.repeats} runs"
    )
    parts = random_sparse_mdp(S, A, args.successors, args.seed)
    data, indices, indptr, R = parts
    P = sp.csr_array((data, indices, indptr), shape=(S * A, S))

    t0 = time.perf_counter()
    mdp = FiniteMDP(P, R, gamma)
    build_s = time.perf_counter() - t0
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        res = value_iteration(mdp, tol=tol, max_iter=args.max_iter)
        times.append(time.perf_counter() - t0)
    t_ls = statistics.median(times)
    rows = [("lanesim value_iteration", t_ls, res.iterations)]
    ok = res.converged
    print(f"lanesim: model built in {build_s:.3f} s")
    print(
        f"lanesim value_iteration: runs=[{', '.join(f'{t:.3f}' for t in times)}] s, "
        f"converged={res.converged} error_bound={res.error_bound:.3g} "
        f"residual={res.residual:.3g}"
    )

    solutions = {"lanesim value_iteration": (res.V, res.policy)}
    if not args.no_quantecon:
        qe = run_quantecon(parts, args)
        print(f"quantecon {qe['version']}: model built in {float(qe['build_s']):.3f} s")
        for method in QE_METHODS:
            times_qe = qe[f"{method}.times"]
            name = f"quantecon {method}"
            rows.append((name, float(np.median(times_qe)), int(qe[f"{method}.num_iter"])))
            solutions[name] = (qe[f"{method}.v"], qe[f"{method}.sigma"])
            print(f"{name}: runs=[{', '.join(f'{t:.3f}' for t in times_qe)}] s")
    ok &= check_solutions(P, R, gamma, tol, solutions)

    print()
    print(f"{'solver':<36} {'median [s]':>10} {'sweeps':>7} {'ratio':>7}")
    for name, t, sweeps in rows:
        print(f"{name:<36} {t:>10.3f} {sweeps:>7d} {t / t_ls:>6.1f}x")
    print("(ratio = time / lanesim time; sweeps = full Bellman sweeps; modified policy")
    print(" iteration also runs 20 cheap policy-evaluation sweeps per Bellman sweep)")
    if len(rows) > 1:
        speedup = rows[1][1] / t_ls
        print(
            f"lanesim speed-up over quantecon value_iteration: {speedup:.1f}x "
            f"(target >= 5x: {'met' if speedup >= 5 else 'NOT met'})"
        )
    print("checks:", "passed" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
