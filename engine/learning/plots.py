"""Drawing what the callbacks recorded: losses, schedules, the LR finder's curve.

Each function returns a matplotlib ``Figure`` (shown inline in Jupyter), so the lessons, the web
demo and the tests use the same pictures.
"""

from __future__ import annotations

__all__ = ["plot_loss", "plot_sched", "plot_lr_find", "SUGGESTION_LABELS"]

# What each of the LR finder's suggestions marks on its plot: "minimum" is one tenth of the rate at the lowest loss.
SUGGESTION_LABELS = {"minimum": "minimum / 10", "steep": "steepest point", "valley": "valley"}


def _smooth(values: list[float], beta: float = 0.9) -> list[float]:
    out, avg = [], 0.0
    for i, v in enumerate(values):
        avg = beta * avg + (1 - beta) * v
        out.append(avg / (1 - beta ** (i + 1)))
    return out


def plot_loss(recorder, skip_start: int = 0):
    """Training loss per step (raw and smoothed) and validation loss at the end of each epoch."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    steps = list(range(skip_start, len(recorder.losses)))
    ax.plot(steps, recorder.losses[skip_start:], alpha=0.3, color="C0", label="train (each step)")
    ax.plot(steps, _smooth(recorder.losses)[skip_start:], color="C0", label="train (smoothed)")
    if recorder.epochs and recorder.losses:
        per_epoch = len(recorder.losses) / len(recorder.epochs)
        xs = [round(per_epoch * (i + 1)) - 1 for i in range(len(recorder.epochs))]
        ax.plot(xs, [e["valid_loss"] for e in recorder.epochs], "o-", color="C1", label="validation")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.legend()
    fig.tight_layout()
    return fig


def plot_sched(recorder):
    """Learning rate of every parameter group, and momentum, over the training steps."""
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.2))
    n_groups = max((len(lr) for lr in recorder.lrs), default=0)
    for g in range(n_groups):
        xs = [i for i, lr in enumerate(recorder.lrs) if len(lr) > g]
        # groups are numbered from the head backwards when phases had different group counts
        ys = [lr[len(lr) - n_groups + g] if len(lr) == n_groups else lr[-1] for lr in recorder.lrs if len(lr) > g]
        ax1.plot(xs, ys, label="head" if g == n_groups - 1 else f"group {g}")
    ax1.set_yscale("log")
    ax1.set_xlabel("step")
    ax1.set_ylabel("learning rate")
    ax1.legend(fontsize=8)
    ax2.plot(recorder.moms)
    ax2.set_xlabel("step")
    ax2.set_ylabel("momentum (Adam beta1)")
    fig.tight_layout()
    return fig


def plot_lr_find(result, skip_end: int = 3):
    """The LR finder's smoothed loss against the learning rate (log scale), suggestions marked."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    n = max(2, len(result.lrs) - skip_end)
    lrs, losses = result.lrs[:n], result.losses[:n]
    ax.plot(lrs, losses)
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("loss (smoothed)")
    markers = {"minimum": ("v", "C1"), "steep": ("o", "C2"), "valley": ("s", "C3")}
    for name, lr in result.suggestions.items():
        i = min(range(len(result.lrs)), key=lambda j: abs(result.lrs[j] - lr))
        marker, color = markers.get(name, ("x", "C4"))
        label = f"{SUGGESTION_LABELS.get(name, name)}: {lr:.1e}"
        ax.plot(lr, result.losses[i], marker, color=color, markersize=9, label=label)
    ax.legend()
    fig.tight_layout()
    return fig
