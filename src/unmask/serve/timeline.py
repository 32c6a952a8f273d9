"""The video timeline: each task's probabilities over time for one face track, as a PNG (matplotlib)."""

from __future__ import annotations

import io


def plot_timeline(tasks, series: dict) -> bytes:
    """``series`` from :func:`unmask.serve.analysis.timeline_series`; one panel per task, a line per label.

    A ``Figure`` with the Agg canvas, not pyplot: no global figure state, so a server thread can draw safely.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 2.2 * len(tasks) + 0.6), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(tasks), 1, sharex=True, squeeze=False)[:, 0]
    t = series["time_s"]
    for ax, task in zip(axes, tasks):
        for label in task.labels:
            ax.plot(t, series["p"][task.name][label], marker="." if len(t) < 40 else None, label=label)
        if series["apex_s"] is not None:
            ax.axvline(series["apex_s"], color="k", linestyle="--", linewidth=1)
        ax.set_ylim(-0.02, 1.02)
        ax.set_ylabel(f"p ({task.title})")
        ax.grid(alpha=0.3)
        ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize="small", frameon=False)
    axes[-1].set_xlabel("time (s); dashed: the apex frame the table shows")
    many = f" (the longest of {series['n_tracks']} tracks)" if series["n_tracks"] > 1 else ""
    fig.suptitle(f"face track {series['track']}{many}", fontsize="medium")
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
