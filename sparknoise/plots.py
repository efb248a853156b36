"""PNG charts of an evaluation (matplotlib, headless): the impact curve and detector precision/recall."""

from __future__ import annotations

import os

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


def impact_curve_png(impact: pd.DataFrame, path: str, *, title: str = "Test accuracy vs injected label noise") -> str:
    """Accuracy of each training variant against the noise rate; returns the file path."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
    for variant, (label, color, marker) in VARIANT_STYLE.items():
        part = impact[impact["variant"] == variant].dropna(subset=["test_accuracy"]).sort_values("noise_rate")
        if len(part):
            ax.plot(part["noise_rate"] * 100, part["test_accuracy"], marker=marker, color=color, label=label,
                    linestyle="--" if variant == "clean" else "-")
    ax.set_xlabel("injected label noise in the training split (%)")
    ax.set_ylabel("test accuracy (trusted labels)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    return _save(plt, fig, path)


def detection_bars_png(detection: pd.DataFrame, path: str, *, noise_rate: float) -> str:
    """Precision and recall of every detector at one noise rate, as grouped horizontal bars."""
    import numpy as np

    plt = _pyplot()
    part = detection[np.isclose(detection["noise_rate"], noise_rate)].reset_index(drop=True)
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(part) + 1.6), dpi=110)
    y = np.arange(len(part))
    ax.barh(y - 0.2, part["precision"].fillna(0), height=0.4, color="tab:blue", label="precision")
    ax.barh(y + 0.2, part["recall"].fillna(0), height=0.4, color="tab:orange", label="recall")
    ax.set_yticks(y, part["detector"], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("against the known flips")
    ax.set_title(f"Detectors at {noise_rate:.0%} injected noise")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    return _save(plt, fig, path)
