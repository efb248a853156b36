"""The label-health report as one self-contained HTML page (images inlined, no network needed)."""

from __future__ import annotations

import base64
import datetime as dt
import html
import json
from typing import Any

import numpy as np
import pandas as pd

from sparknoise.report.data import ReportData
from sparknoise.report.plots import matrix_heatmap_png, most_confused_classes, quality_histogram_png

MAX_HEATMAP_CLASSES = 30  # above this, heatmaps show the most confused classes only
TOP_PAIRS = 25

_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px auto;max-width:1280px;color:#222;
 padding:0 16px}
h1{font-size:24px;margin-bottom:4px} h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ddd;padding-bottom:4px}
.sub{color:#666;margin-top:0}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:16px 0}
.card{border:1px solid #ddd;border-radius:8px;padding:10px 16px;min-width:140px;background:#fafafa}
.card .v{font-size:22px;font-weight:600} .card .k{font-size:12px;color:#666}
table{border-collapse:collapse;font-size:13px;margin:8px 0}
th,td{border:1px solid #ddd;padding:3px 8px;text-align:right} th{background:#f2f2f2}
td:first-child,th:first-child{text-align:left}
.figs{display:flex;flex-wrap:wrap;gap:16px} .figs figure{margin:0} figcaption{font-size:12px;color:#666;max-width:560px}
.scroll{max-height:460px;overflow:auto;display:inline-block}
pre{background:#f6f6f6;padding:8px;font-size:12px;overflow:auto;max-height:320px}
.note{font-size:13px;color:#555}
.warning{background:#fff4e5;border-left:4px solid #e67e22;padding:8px 12px}
"""

# Marks the page once the heatmap image has decoded: headless-browser tests read it from the DOM.
_SCRIPT = """
window.addEventListener('load', function () {
  var img = document.getElementById('heatmap-noise-matrix');
  document.body.setAttribute('data-heatmap-loaded', img && img.complete && img.naturalWidth > 0 ? 'true' : 'false');
});
"""


def _img(png: bytes, alt: str, element_id: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img id="{element_id}" alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _table(df: pd.DataFrame, floats: str = "{:.4f}") -> str:
    return df.to_html(index=False, border=0, na_rep="", float_format=lambda v: floats.format(v))


def _card(value: str, key: str) -> str:
    return f'<div class="card"><div class="v">{html.escape(value)}</div><div class="k">{html.escape(key)}</div></div>'


def _jsonable(value: Any) -> Any:
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def _run_section(run: dict[str, Any]) -> str:
    rows = [
        ("run id", run.get("run_id") or "(not from a job run)"),
        ("source", run.get("source") or "detect job"),
        ("input", run.get("input_location")),
        ("input Delta version", run.get("input_version")),
        ("started", run.get("started_at")),
        ("finished", run.get("finished_at")),
        ("sparknoise version", run.get("sparknoise_version")),
        ("config sha256", run.get("config_sha256")),
        ("cleaning rounds", run.get("rounds")),
    ]
    fit = run.get("model_fit") or {}
    if fit.get("n"):
        rows += [("out-of-fold accuracy (most frequent class)", f"{fit['accuracy']:.4f} ({fit['baseline_accuracy']:.4f})"),
                 ("out-of-fold log loss (class frequencies)", f"{fit['log_loss']:.4f} ({fit['baseline_log_loss']:.4f})")]
    body = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows
                   if v is not None)
    timings = run.get("timings") or {}
    timing_rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{float(v):.2f}</td></tr>" for k, v in timings.items())
    config = json.dumps(run.get("config") or {}, indent=2, sort_keys=True, default=_jsonable)
    return (
        "<h2>Run</h2><table>" + body + "</table>"
        + (f"<p>Timings (seconds)</p><table><tr><th>stage</th><th>seconds</th></tr>{timing_rows}</table>"
           if timing_rows else "")
        + f"<details><summary>Configuration</summary><pre>{html.escape(config)}</pre></details>"
    )


def _heatmaps(data: ReportData) -> str:
    K = len(data.classes)
    shown = None
    note = ""
    if K > MAX_HEATMAP_CLASSES:
        shown = most_confused_classes(data.health.joint, MAX_HEATMAP_CLASSES)
        note = (f'<p class="note">{K} classes are too many for a readable heatmap: the heatmaps show the '
                f"{len(shown)} classes of the most confused pairs; the table of overlapping classes below "
                "lists the top pairs of all classes.</p>")
    noise = matrix_heatmap_png(
        data.noise_matrix, data.classes, title="Estimated noise matrix P(given label | true label)",
        row_label="given label", col_label="true label", shown=shown,
    )
    cj = matrix_heatmap_png(
        data.confident_joint, data.classes, title="Confident joint (calibrated row counts)",
        row_label="given label", col_label="true label (confidently predicted)", fmt="{:.0f}", shown=shown,
    )
    return (
        "<h2>Where the labels are wrong</h2>" + note + '<div class="figs">'
        + "<figure>" + _img(noise, "heatmap of the estimated noise matrix", "heatmap-noise-matrix")
        + "<figcaption>Column j: how rows whose true class is j are labelled. Off-diagonal cells are label "
          "noise.</figcaption></figure>"
        + "<figure>" + _img(cj, "heatmap of the confident joint", "heatmap-confident-joint")
        + "<figcaption>Rows counted by given label (rows) and the class the model is confident in "
          "(columns), calibrated to the class counts.</figcaption></figure></div>"
    )


def _embedded(data: ReportData) -> dict[str, Any]:
    """The report's numbers, machine-readable (a JSON script element in the page)."""
    hist = data.quality_histogram
    return {
        **data.headline(),
        "classes": data.classes,
        "classes_by_label_quality": (data.health.classes_by_label_quality.to_dict(orient="records")
                                     if data.health is not None else []),
        "quality_histogram": {"bin_start": hist["bin_start"].tolist(), "flagged": hist["flagged"].tolist(),
                              "kept": hist["kept"].tolist()},
        "top_ids": data.top_rows.iloc[:, 0].tolist() if len(data.top_rows) else [],
    }


def _cleaning_section(cleaning: dict[str, Any] | None) -> str:
    """What the cleaning loop did with this run: rows per action and source, per split (what changed and
    why), and the protected rows (the test split) that reviewers changed, one by one."""
    if not cleaning:
        return ""
    counts = cleaning.get("counts") or {}
    by_source = counts.get("by_source") or {}
    table = pd.DataFrame([
        {"action": a, "rows": counts.get(a, 0), "by review": (by_source.get("review") or {}).get(a, 0),
         "by policy": (by_source.get("policy") or {}).get(a, 0)}
        for a in ("kept", "relabeled", "downweighted", "removed")
    ])
    protect = cleaning.get("protect_where")
    mode = cleaning.get("protect_mode") or "all"
    parts = [f"<h2 id='cleaning'>Cleaning</h2><p class='note'>Applied by run <code>"
             f"{html.escape(str(cleaning.get('run_id')))}</code> (policy for unreviewed flagged rows: "
             f"<code>{html.escape(str(cleaning.get('unreviewed')))}</code>): {counts.get('reviewed', 0):,} rows "
             "reviewed." + (f" Protected rows: <code>{html.escape(str(protect))}</code>, protect mode <code>"
                            f"{html.escape(mode)}</code> (" + ("never changed" if mode == "all" else
                                                             "changed only by reviewers' verdicts") + ")."
                            if protect else "") + "</p>",
             f'<div class="scroll">{_table(table)}</div>']
    by_split = counts.get("by_split") or {}
    if by_split:
        why: dict[tuple[str, str], dict[str, int]] = {}
        for r in cleaning.get("changes_by_split") or []:
            why.setdefault((r["split"], r["action"]), {})[r["source"]] = r["count"]
        rows = []
        for split, acts in by_split.items():
            for action in ("kept", "relabeled", "downweighted", "removed"):
                if action == "kept" or acts.get(action):
                    src = why.get((split, action), {})
                    rows.append({"split": split, "action": action, "rows": acts.get(action, 0),
                                 "by review": src.get("review", 0) if action != "kept" else "",
                                 "by policy": src.get("policy", 0) if action != "kept" else ""})
        parts.append(f"<h3 id='cleaning-splits'>Per split ({html.escape(str(cleaning.get('split_col')))})</h3>"
                     "<p class='note'>What changed in each split and why: by a reviewer's verdict or by the "
                     "policy for unreviewed flagged rows (each row's reason is in the audit table).</p>"
                     f'<div class="scroll">{_table(pd.DataFrame(rows))}</div>')
    corrections = cleaning.get("corrections")
    if corrections is not None and protect:
        parts.append(f"<h3 id='cleaning-corrections'>Protected rows changed by review ({len(corrections):,}"
                     f"{' shown' if len(corrections) >= 200 else ''})</h3><p class='note'>Rows matching <code>"
                     f"{html.escape(str(protect))}</code> (the test split) that reviewers relabeled or removed: "
                     "check these before benchmarking on the cleaned test split.</p>"
                     + (f'<div class="scroll">{_table(corrections)}</div>' if len(corrections)
                        else "<p class='note'>None.</p>"))
    return "".join(parts)


def _multiclass_sections(data: ReportData) -> str:
    classes = data.health.classes_by_label_quality
    pairs = data.health.overlapping_classes.head(TOP_PAIRS)
    return "".join([
        _heatmaps(data),
        "<h2>Classes by label quality</h2><p class='note'>Worst first. Label Noise = P(true != k | given k); "
        "Inverse Label Noise = P(given != k | true k); counts are estimates for the whole table "
        "(cleanlab.dataset semantics).</p>",
        f'<div class="scroll">{_table(classes)}</div>',
        f"<h2>Overlapping classes</h2><p class='note'>The {len(pairs)} most confused class pairs (symmetric: "
        "both directions summed). Consider merging classes at the top of this list.</p>",
        f'<div class="scroll">{_table(pairs, "{:.5f}")}</div>',
    ])


def _multilabel_sections(data: ReportData) -> str:
    per_class = data.per_class if data.per_class is not None else pd.DataFrame()
    if len(per_class):
        per_class = per_class.assign(
            flagged_tag_given_share=per_class["flagged_tag_given"] / max(data.n_rows, 1),
            flagged_tag_missing_share=per_class["flagged_tag_missing"] / max(data.n_rows, 1),
        ).sort_values(["flagged_tag_given_share", "class"], ascending=[False, True])
    return ("<h2 id='tags'>Tags by label quality</h2><p class='note'>Multi-label run: each class is its own "
            "present/absent Confident Learning problem (cleanlab's multilabel_classification). Per class: rows "
            "carrying the tag, rows flagged with the tag given (it should be absent) and missing (it should be "
            "present), and its confident thresholds; worst first. The health score is 1 - flagged rows / rows.</p>"
            f'<div class="scroll">{_table(per_class)}</div>')


def _task_sections(data: ReportData) -> str:
    """The sections that depend on the task: heatmaps and class tables (multiclass), per-tag table
    (multilabel), predictions and residuals (regression)."""
    if data.task == "multilabel":
        return _multilabel_sections(data)
    if data.task == "regression":
        return _regression_sections(data)
    return _multiclass_sections(data)


def _regression_sections(data: ReportData) -> str:
    reg = data.regression or {}
    parts = [f"<h2 id='regression'>Given values and out-of-fold predictions</h2><p class='note'>Regression run: "
             f"{html.escape(str(reg.get('description') or ''))}</p>"]
    if reg.get("scatter_png"):
        parts.append("<div class='figs'><figure>" + _img(reg["scatter_png"], "given vs predicted values",
                                                          "regression-scatter")
                     + f"<figcaption>A sample of {reg.get('sample_rows', 0):,} rows (every flagged row of the "
                       "sample in red): the given value against the out-of-fold prediction.</figcaption></figure>")
        if reg.get("residual_png"):
            parts.append("<figure>" + _img(reg["residual_png"], "histogram of residuals", "regression-residuals")
                         + "<figcaption>Residuals (prediction - given) of all rows: flagged and kept."
                           "</figcaption></figure>")
        parts.append("</div>")
    return "".join(parts)


def _rank_by(run: dict[str, Any]) -> str:
    config = run.get("config") or {}
    return str(config.get("rank_by") or (config.get("detection") or {}).get("rank_by") or "self_confidence")


TITLES = {"detect": "sparknoise label-health report", "audit": "sparknoise data-issues report"}


def _label_page(data: ReportData) -> tuple[str, str]:
    """(headline cards, sections) of a detect run: label health."""
    h = data.headline()
    flagged_share = data.num_flagged / data.n_rows if data.n_rows else 0.0
    cards = "".join([
        _card(f"{data.n_rows:,}", "rows"),
        _card(f"{len(data.classes):,}", "classes") if data.task != "regression" else "",
        _card(f"{data.num_flagged:,}", f"flagged rows ({flagged_share:.2%})"),
        _card(f"{data.estimated_noise_rate:.2%}", "estimated label noise (1 - trace of the joint)")
        if data.estimated_noise_rate is not None else "",
        _card(f"{h['overall_label_health_score']:.4f}", "label health score"),
        _card(f"{data.num_label_issues:,}", "cleanlab num_label_issues") if data.task != "regression" else "",
    ])
    top = data.top_rows
    body = "".join([
        "".join(f"<p class='warning'><b>Warning:</b> {html.escape(w)}</p>" for w in data.run.get("warnings") or []),
        _task_sections(data),
        "<h2>Label quality</h2>",
        "<figure>" + _img(quality_histogram_png(data.quality_histogram, score=_rank_by(data.run)), "histogram of label quality",
                          "quality-histogram") + "</figure>",
        f"<h2>The {len(top)} most suspicious rows</h2><p class='note'>Ordered by issue rank (most suspicious "
        "first); hand them to annotators with the suggested label.</p>",
        f'<div class="scroll">{_table(top)}</div>',
        _cleaning_section(data.cleaning),
    ])
    return cards, body


def search_text(search: dict[str, Any]) -> str:
    """One line saying which nearest-neighbour search an audit ran, with its settings."""
    if not search or search.get("kind") in (None, "none"):
        return "no nearest-neighbour search ran (no feature-based issue type)"
    settings = ", ".join(f"{k} {v}" for k, v in search.items() if k != "kind")
    return f"{search['kind']} nearest-neighbour search ({settings})"


def _audit_page(data: ReportData) -> tuple[str, str]:
    """(headline cards, sections) of an audit run: per issue type its count and dataset score, the worst rows
    of each type, the duplicate sets, the leakage pairs and the weakest groups."""
    a = data.audit or {}
    n = max(data.n_rows, 1)
    flagged_share = data.num_flagged / n
    cards = "".join([
        _card(f"{data.n_rows:,}", "rows"),
        _card(f"{data.num_flagged:,}", f"rows with an issue ({flagged_share:.2%})"),
        *[_card(f"{r['num_issues']:,}", f"{r['issue_type']} issues") for r in a.get("summary") or []],
        _card(f"{a.get('num_duplicate_sets') or 0:,}", "duplicate sets"),
        _card(f"{a.get('num_leakage_pairs') or 0:,}", "leakage pairs") if a.get("split_col") else "",
    ])
    summary = pd.DataFrame(a.get("summary") or [], columns=["issue_type", "num_issues", "score"])
    summary.insert(2, "share of rows", summary["num_issues"] / n)
    parts = [
        f"<h2 id='issue-types'>Issue types</h2><p class='note'>cleanlab Datalab's issue types and rules; the "
        f"score is Datalab's dataset score per type (lower is worse). {html.escape(search_text(a.get('search') or {}))}"
        ".</p>",
        f'<div class="scroll">{_table(summary)}</div>',
        "<details><summary>Thresholds each rule used</summary><pre>"
        + html.escape(json.dumps(a.get("info") or {}, indent=2, sort_keys=True, default=_jsonable)) + "</pre></details>",
    ]
    def section(key: str, anchor: str, heading: str, note: str, fmt: str | None = None) -> None:
        frame = a.get(key)
        if frame is not None:
            table = (f'<div class="scroll">{_table(frame, fmt or "{:.4f}")}</div>' if len(frame)
                     else "<p class='note'>None.</p>")
            parts.append(f"<h2 id='{anchor}'>{heading}</h2><p class='note'>{note}</p>{table}")

    section("worst_rows", "worst-rows", "The worst rows of each type",
            f"Flagged rows, lowest score first (at most {a.get('top')} per type); details: the duplicate set and "
            "distance, the row's group or label.")
    n_sets = len(a["duplicate_sets"]) if a.get("duplicate_sets") is not None else 0
    section("duplicate_sets", "duplicate-sets", f"Duplicate sets ({a.get('num_duplicate_sets') or 0:,})",
            "Each set of exact or near duplicates (connected through pairs within the near-duplicate radius), "
            f"largest first ({n_sets} shown); exact: every member has identical features. Keep one row of each.")
    n_pairs = len(a["leakage"]) if a.get("leakage") is not None else 0
    section("leakage", "leakage", f"Train/test leakage ({a.get('num_leakage_pairs') or 0:,} pairs)",
            f"Exact or near duplicates whose {html.escape(str(a.get('split_col')))} differs, closest first "
            f"({n_pairs} shown): each inflates offline metrics. Remove the training copy.", "{:.6g}")
    groups = a.get("groups")
    if groups is not None:
        parts.append(f"<h2 id='weakest-groups'>Weakest groups ({html.escape(', '.join(a.get('group_cols') or []))})"
                     "</h2><p class='note'>Segments by underperforming_group score (mean self-confidence of the "
                     "group over the mean of all rows; 1 when not below it), worst first; the flagged group is the "
                     "lowest when below 0.1.</p>" + f'<div class="scroll">{_table(groups)}</div>')
    return cards, "".join(parts)


def _embedded_audit(data: ReportData) -> dict[str, Any]:
    worst = (data.audit or {}).get("worst_rows")
    return {**data.headline(), "worst_ids": {t: g.iloc[:, 1].tolist() for t, g in worst.groupby("issue_type")}
            if worst is not None and len(worst) else {}}


def render_report(data: ReportData, *, title: str | None = None) -> str:
    """The whole report as an HTML string; its sections follow the run's job (``data.job``): label health for
    a detect run, data issues for an audit run. The page frame, the run section and the embedded JSON are shared."""
    title = title or TITLES.get(data.job, TITLES["detect"])
    h = data.headline()
    cards, body = (_audit_page if data.job == "audit" else _label_page)(data)
    embedded = _embedded_audit(data) if data.job == "audit" else _embedded(data)
    sub = f"run <code>{html.escape(str(h['run_id']))}</code>" if h["run_id"] else "from a find_label_issues result"
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1><p class='sub'>{sub}; generated "
        f"{dt.datetime.now(dt.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}</p>",
        f'<div class="cards" id="headline">{cards}</div>',
        body,
        _run_section(data.run),
        '<script type="application/json" id="sparknoise-report-data">'
        + json.dumps(embedded, default=_jsonable).replace("</", "<\\/") + "</script>",
        f"<script>{_SCRIPT}</script></body></html>",
    ]
    return "\n".join(parts)


def write_report(data: ReportData, path: str) -> str:
    """Write the report to ``path`` (a local file); returns the path."""
    import os

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(render_report(data))
    return path
