"""Pictures of evaluation results and learning curves (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def learning_curve(training_dir: Path, tag: str) -> tuple[np.ndarray, np.ndarray]:
    """``(steps, values)`` of a TensorBoard scalar written under ``training_dir/tb``."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    steps, values = [], []
    for events in sorted((Path(training_dir) / "tb").rglob("events.out.tfevents.*")):
        acc = EventAccumulator(str(events), size_guidance={"scalars": 0})
        acc.Reload()
        if tag in acc.Tags().get("scalars", []):
            for e in acc.Scalars(tag):
                steps.append(e.step)
                values.append(e.value)
    order = np.argsort(steps, kind="stable")
    return np.asarray(steps)[order], np.asarray(values)[order]


def plot_evaluation(result: dict[str, Any], path: str | Path, training_dir: Path | None = None,
                    curve_tag: str = "charts/episodic_return") -> None:
    """Per-episode return (crashes marked) and, for a training directory, its learning curve."""
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    returns = np.asarray(result["returns"])
    crashed = np.asarray(result["collisions"], dtype=bool)
    curve = learning_curve(training_dir, curve_tag) if training_dir is not None else None
    panels = 2 if curve is not None and len(curve[0]) else 1
    fig, axes = plt.subplots(1, panels, figsize=(6 * panels, 3.6), squeeze=False)
    ax = axes[0, 0]
    episodes = np.arange(len(returns))
    ax.bar(episodes, returns, color=np.where(crashed, "#d62728", "#1f77b4"))
    ax.axhline(returns.mean(), color="black", lw=1, ls="--", label=f"mean {returns.mean():.2f}")
    ax.set_xlabel("episode")
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_ylabel("return")
    ax.set_title(f"{len(returns)} episodes, collision rate {result['collision_rate']:.0%} (red)")
    ax.legend(loc="lower right")
    if panels == 2:
        steps, values = curve
        ax = axes[0, 1]
        ax.plot(steps, values, lw=0.6, alpha=0.4, color="#1f77b4")
        k = max(len(values) // 30, 1)
        smooth = np.convolve(values, np.ones(k) / k, mode="valid")
        ax.plot(steps[k - 1 :], smooth, color="#1f77b4", label=f"moving mean of {k}")
        ax.set_xlabel("environment steps")
        ax.set_ylabel("episode return")
        ax.set_title("learning curve")
        ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
