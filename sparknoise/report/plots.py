"""PNG charts (matplotlib, headless): an evaluation's impact curve and detector precision/recall; a
report's matrix heatmaps and label-quality histogram."""

from __future__ import annotations

import io
import os
from typing import Sequence

import numpy as np
import pandas as pd

VARIANT_STYLE = {
    "noisy": ("noisy labels", "tab:red", "o"),
    "pruned": ("cleaned: flagged rows pruned", "tab:blue", "s"),
    "downweighted": ("cleaned: flagged rows down-weighted", "tab:purple", "^"),
    "clean": ("clean labels", "tab:green", "D"),
}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(plt, fig, path: str) -> str:
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def _png_bytes(plt, fig) -> bytes:
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def most_confused_classes(joint: np.ndarray, limit: int) -> list[int]:
    """Up to ``limit`` class indices, those in the most confused pairs first (off-diagonal joint mass)."""
    off = np.asarray(joint, dtype=np.float64).copy()
    np.fill_diagonal(off, 0.0)
    pair_mass = off + off.T
    order = np.argsort(-pair_mass, axis=None, kind="stable")
    chosen: list[int] = []
    for flat in order:
        a, b = divmod(int(flat), len(off))
        for k in (a, b):
            if k not in chosen and len(chosen) < limit:
                chosen.append(k)
        if len(chosen) >= limit:
            break
    return sorted(chosen)


def matrix_heatmap_png(matrix: np.ndarray, class_names: Sequence[str], *, title: str, row_label: str,
                       col_label: str, fmt: str = "{:.2f}", shown: Sequence[int] | None = None) -> bytes:
    """A K x K heatmap (PNG bytes) with class names; ``shown`` restricts it to those classes.

    Up to 12 classes every cell is annotated; beyond, the diagonal is greyed out so the colour scale
    shows the confusions instead of the (much larger) agreement.
    """
    plt = _pyplot()
    idx = list(range(len(matrix))) if shown is None else list(shown)
    m = np.asarray(matrix, dtype=np.float64)[np.ix_(idx, idx)]
    names = [str(class_names[i]) for i in idx]
    k = len(idx)
    annotate = k <= 12
    side = min(5.0, max(4.2, 0.3 * k + 2.6))
    fig, ax = plt.subplots(figsize=(side + 1.0, side), dpi=100)
    shown_m = m if annotate else np.where(np.eye(k, dtype=bool), np.nan, m)
    cmap = plt.get_cmap("viridis").with_extremes(bad="#cccccc")
    im = ax.imshow(shown_m, cmap=cmap, aspect="equal")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    font = 9 if k <= 10 else 7 if k <= 20 else 5
    ax.set_xticks(range(k), names, rotation=60, ha="right", fontsize=font)
    ax.set_yticks(range(k), names, fontsize=font)
    ax.set_xlabel(col_label)
    ax.set_ylabel(row_label)
    ax.set_title(title if annotate else f"{title}\n(diagonal in grey)", fontsize=10)
    if annotate:
        top = m.max() if m.size else 0.0
        for (i, j), v in np.ndenumerate(m):
            ax.text(j, i, fmt.format(v), ha="center", va="center", fontsize=7,
                    color="black" if top and v > 0.6 * top else "white")
    return _png_bytes(plt, fig)


def quality_histogram_png(histogram: pd.DataFrame, *, score: str = "self_confidence") -> bytes:
    """Stacked bars of kept and flagged rows per label-quality bin (PNG bytes), log-scaled counts."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 3.6), dpi=100)
    width = float((histogram["bin_end"] - histogram["bin_start"]).iloc[0]) if len(histogram) else 0.05
    left = histogram["bin_start"]
    ax.bar(left, histogram["kept"], width=width, align="edge", color="tab:blue", label="kept", edgecolor="white")
    ax.bar(left, histogram["flagged"], width=width, align="edge", bottom=histogram["kept"], color="tab:red",
           label="flagged", edgecolor="white")
    if (histogram["kept"] + histogram["flagged"]).max() > 0:
        ax.set_yscale("log")
    ax.set_xlim(0, 1)
    ax.set_xlabel(f"label quality ({score})")
    ax.set_ylabel("rows (log scale)")
    ax.set_title("Label quality: flagged vs kept rows", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return _png_bytes(plt, fig)


def regression_scatter_png(sample: pd.DataFrame) -> bytes:
    """Given value against out-of-fold prediction for a sample of rows, flagged rows in red (PNG bytes)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.2, 4.6), dpi=100)
    kept, flagged = sample[~sample["is_label_issue"]], sample[sample["is_label_issue"]]
    ax.scatter(kept["predicted_label"], kept["given_label"], s=6, color="tab:blue", alpha=0.5, label="kept")
    ax.scatter(flagged["predicted_label"], flagged["given_label"], s=10, color="tab:red", label="flagged")
    if len(sample):
        lo = float(min(sample["given_label"].min(), sample["predicted_label"].min()))
        hi = float(max(sample["given_label"].max(), sample["predicted_label"].max()))
        ax.plot([lo, hi], [lo, hi], color="gray", lw=0.8, ls="--")
    ax.set_xlabel("out-of-fold prediction")
    ax.set_ylabel("given value")
    ax.set_title("Given vs predicted", fontsize=10)
    ax.legend(fontsize=8)
    return _png_bytes(plt, fig)


def residual_histogram_png(histogram: pd.DataFrame) -> bytes:
    """Stacked bars of kept and flagged rows per residual bin (columns bin_start, bin_end, kept, flagged)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=100)
    width = (histogram["bin_end"] - histogram["bin_start"]).to_numpy()
    ax.bar(histogram["bin_start"], histogram["kept"], width=width, align="edge", color="tab:blue", label="kept")
    ax.bar(histogram["bin_start"], histogram["flagged"], width=width, align="edge", bottom=histogram["kept"],
           color="tab:red", label="flagged")
    if (histogram["kept"] + histogram["flagged"]).max() > 0:
        ax.set_yscale("log")
    ax.set_xlabel("residual (prediction - given)")
    ax.set_ylabel("rows (log scale)")
    ax.set_title("Residuals: flagged vs kept rows", fontsize=10)
    ax.legend(fontsize=8)
    return _png_bytes(plt, fig)


def impact_curve_png(impact: pd.DataFrame, path: str, *, title: str = "Test accuracy vs injected label noise",
                     metric: str = "test_accuracy", ylabel: str = "test accuracy (trusted labels)") -> str:
    """``metric`` (test accuracy, or a regression's R²) of each training variant against the noise rate;
    returns the file path."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    for variant, (label, color, marker) in VARIANT_STYLE.items():
        part = impact[impact["variant"] == variant].dropna(subset=[metric]).sort_values("noise_rate")
        if len(part):
            ax.plot(part["noise_rate"] * 100, part[metric], marker=marker, color=color, label=label,
                    linestyle="--" if variant == "clean" else "-")
    ax.set_xlabel("injected label noise in the training split (%)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    return _save(plt, fig, path)


def detection_bars_png(detection: pd.DataFrame, path: str, *, noise_rate: float, labels: str = "detector") -> str:
    """Precision and recall of every detector (every row: its ``labels`` column names the bar, e.g. a
    regression's ``mode``) at one noise rate, as grouped horizontal bars."""
    plt = _pyplot()
    part = detection[np.isclose(detection["noise_rate"], noise_rate)].reset_index(drop=True)
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(part) + 1.6), dpi=110)
    y = np.arange(len(part))
    ax.barh(y - 0.2, pd.to_numeric(part["precision"]).fillna(0), height=0.4, color="tab:blue", label="precision")
    ax.barh(y + 0.2, pd.to_numeric(part["recall"]).fillna(0), height=0.4, color="tab:orange", label="recall")
    ax.set_yticks(y, part[labels].astype(str), fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("against the known flips")
    ax.set_title(f"Detectors at {noise_rate:.0%} injected noise")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    return _save(plt, fig, path)
