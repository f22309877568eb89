"""The report's figures (matplotlib, Agg canvas, no pyplot state): each function returns PNG bytes."""
from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

KEPT, PRUNED = "#1f77b4", "#d62728"


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return buf.getvalue()


def _grid(n: int, ncols: int = 3, size: tuple[float, float] = (3.4, 3.0)) -> tuple[Figure, list]:
    ncols = max(1, min(ncols, n))
    nrows = -(-n // ncols)
    fig = Figure(figsize=(size[0] * ncols, size[1] * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, list(axes[:n])


def accuracy_curves(rows: pd.DataFrame, metric: str, title: str) -> bytes:
    """Mean ``metric`` against mean fraction kept, one line per curator with ± std error bars over
    seeds; the full-data mean as a dashed reference line (its ± std shaded)."""
    fig = Figure(figsize=(6.0, 4.0), layout="constrained")
    ax = fig.subplots()
    full = rows[rows["curator"] == "full"]
    for cur, g in rows[rows["curator"] != "full"].groupby("curator", sort=False):
        g = g.sort_values("fraction_kept")
        ax.errorbar(g["fraction_kept"], g[f"{metric}_mean"], yerr=g[f"{metric}_std"].fillna(0), marker="o",
                    capsize=3, label=cur)
    if len(full):
        m, s = float(full[f"{metric}_mean"].iloc[0]), full[f"{metric}_std"].iloc[0]
        ax.axhline(m, color="black", ls="--", lw=1, label="full data")
        if pd.notna(s):
            ax.axhspan(m - s, m + s, color="grey", alpha=0.15, lw=0)
    ax.set_xlabel("fraction of training data kept")
    ax.set_ylabel(metric)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    return _png(fig)


def embedding_map(xy: np.ndarray, panels: Sequence[tuple[str, np.ndarray]], title: str) -> bytes:
    """The 2-D projection ``xy`` of sampled training samples, one panel per curation: kept vs pruned."""
    fig, axes = _grid(len(panels))
    for ax, (label, kept) in zip(axes, panels):
        ax.scatter(xy[~kept, 0], xy[~kept, 1], s=3, c=PRUNED, alpha=0.35, lw=0, label=f"pruned ({(~kept).sum()})")
        ax.scatter(xy[kept, 0], xy[kept, 1], s=3, c=KEPT, alpha=0.5, lw=0, label=f"kept ({kept.sum()})")
        ax.set_title(label, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.legend(fontsize=7, markerscale=3, loc="best")
    fig.suptitle(title, fontsize=10)
    return _png(fig)


def popularity_histograms(pop: np.ndarray, panels: Sequence[tuple[str, np.ndarray]], title: str) -> bytes:
    """Histogram of the training popularity of each sample's (target) item, kept vs pruned, per curation."""
    logp = np.log10(np.maximum(pop, 1))
    bins = np.linspace(0, logp.max() + 1e-9, 25)
    fig, axes = _grid(len(panels))
    for ax, (label, kept) in zip(axes, panels):
        ax.hist(logp[~kept], bins=bins, color=PRUNED, histtype="step", lw=1.6, label=f"pruned ({(~kept).sum()})")
        ax.hist(logp[kept], bins=bins, color=KEPT, histtype="step", lw=1.6, label=f"kept ({kept.sum()})")
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("log10 item popularity (training count)", fontsize=8)
        ax.set_ylabel("samples", fontsize=8)
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    return _png(fig)


def agreement_bars(levels: Sequence[str], counts: np.ndarray, kept_share: dict[str, np.ndarray], title: str) -> bytes:
    """Share of samples kept per expert-agreement level (one bar per budget), with each level's count."""
    fig = Figure(figsize=(6.0, 3.6), layout="constrained")
    ax = fig.subplots()
    x = np.arange(len(levels))
    width = 0.8 / max(1, len(kept_share))
    for i, (label, share) in enumerate(kept_share.items()):
        ax.bar(x + (i - (len(kept_share) - 1) / 2) * width, share, width, label=label)
    ax.set_xticks(x, [f"{lv}\n(n={c})" for lv, c in zip(levels, counts)], fontsize=8)
    ax.set_ylabel("share of samples kept")
    ax.set_ylim(0, 1)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3, axis="y")
    return _png(fig)
