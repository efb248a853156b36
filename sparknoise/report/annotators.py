"""The report of a multi-annotator (annotators job) run: one self-contained HTML page.

Driver-side rendering of summary data only: the run's headline counts, the annotators ranked by
quality (worst first, at most ``MAX_ANNOTATORS`` rows) with each one's worst class and weight,
and the distribution of consensus quality (a histogram of at most 20 bins).
"""

from __future__ import annotations

import datetime as dt
import html
from dataclasses import dataclass
from typing import Any

import pandas as pd

from sparknoise.report.html import _CSS, _card, _img, _run_section, _table
from sparknoise.report.plots import quality_histogram_png

MAX_ANNOTATORS = 200


@dataclass(frozen=True)
class AnnotatorReportData:
    """Summaries of one annotators run."""

    run: dict[str, Any]
    metrics: dict[str, Any]
    annotators: pd.DataFrame  # worst first
    consensus_histogram: pd.DataFrame  # bin_start, bin_end, flagged (quality < 0.5), kept


def render_annotator_report(data: AnnotatorReportData, *, title: str = "sparknoise annotator report") -> str:
    """The whole page as an HTML string."""
    m = data.metrics
    cards = "".join([
        _card(f"{m.get('n_items', 0):,}", "items"),
        _card(f"{m.get('n_annotators', 0):,}", "annotators"),
        _card(f"{m.get('n_annotations', 0):,}", "annotations"),
        _card(f"{m.get('mean_consensus_quality') or 0:.4f}", "mean consensus quality"),
        _card(f"{m.get('low_quality_items', 0):,}", "items with consensus quality < 0.5"),
    ])
    method = f"{m.get('consensus_method')} consensus, {m.get('quality_method')} quality"
    return "\n".join([
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1><p class='sub'>run <code>{html.escape(str(data.run.get('run_id')))}</code>; "
        f"{html.escape(method)}; generated {dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}</p>",
        f'<div class="cards" id="headline">{cards}</div>',
        f"<h2>Annotators</h2><p class='note'>Ranked by annotator quality, worst first ({len(data.annotators)} shown). "
        "The worst class is the label the annotator gives that agrees least with the consensus. An empty quality "
        "means the annotator only labelled items nobody else labelled.</p>",
        f'<div class="scroll" id="annotators">{_table(data.annotators)}</div>',
        "<h2>Consensus quality</h2><p class='note'>Items per consensus-quality bin; red: below 0.5 (relabel or "
        "ask for another annotation first).</p>",
        "<figure>" + _img(quality_histogram_png(data.consensus_histogram, score="consensus quality"),
                          "histogram of consensus quality", "consensus-histogram") + "</figure>",
        _run_section(data.run),
        "</body></html>",
    ])


def write_annotator_report(data: AnnotatorReportData, path: str) -> str:
    import os

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(render_annotator_report(data))
    return path
