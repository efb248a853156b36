"""DESIGN.md section 2, checked on the package source: Spark Connect safe, nothing row-level to the driver.

Fails on ``sparkContext``, ``.rdd``, ``_jvm``, ``_jdf``, ``.cache(`` and ``.persist(`` anywhere in
``sparknoise/``, on any ``toPandas``/``toLocalIterator``, and on a ``collect()``/``first()`` outside the
allow-list below: the functions whose collects are summary-sized (the bound is in the comment).
"""

from __future__ import annotations

import ast
import os
import re

PACKAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "sparknoise")
FORBIDDEN = [r"\bsparkContext\b", r"\.rdd\b", r"\b_jvm\b", r"\b_jdf\b", r"\.cache\(", r"\.persist\("]

ALLOWED_COLLECTS = {
    "clean_learning.py:_exists": "limit(1): does a path exist",
    "clean_learning.py:load": "one metadata line",
    "confident_joint.py:count_confident_joint": "K x K partial counts",
    "cross_validation.py:label_classes": "K distinct labels",
    "cross_validation.py:_validated_folds": "n_folds counts",
    "cross_validation.py:cross_val_predict_proba": "limit(1): one unknown label for the message",
    "demo.py:run_demo": "one aggregate row",
    "evaluation.py:_flag_metrics": "one aggregate row",
    "evaluation.py:_accuracy": "one aggregate row",
    "folds.py:assign_folds": "K x n_folds bucket counts",
    "inject_job.py:run_inject": "one aggregate row",
    "invalid_rows.py:screen_invalid": "one aggregate row",
    "label_issues.py:find_label_issues": "<= RANK_BUCKETS x K bucket counts",
    "noise_injection.py:_profile": "<= K + 2 class counts, <= 3 example ids",
    "rank_segments.py:assign_segments": "<= groups x buckets counts",
    "report_data.py:quality_histogram": "<= 2 x bins counts",
    "report_data.py:_top_rows": "limit(top) rows for the report",
    "report_data.py:run_row": "limit(2): one run's row",
    "selection.py:_histogram_scan": "<= HISTOGRAM_BUDGET histogram entries",
    "selection.py:find_cutoffs": "one row per active cell",
    "tables.py:check_output_location": "one detail row",
    "tables.py:latest_version": "one history row",
    "validation.py:num_classes_of": "limit(1)",
    "validation.py:profile_input": "merged per-class statistics",
    "validation.py:_check_ids": "limit(5) example ids",
}


def _sources():
    for name in sorted(os.listdir(PACKAGE)):
        if name.endswith(".py"):
            with open(os.path.join(PACKAGE, name)) as f:
                yield name, f.read()


def test_no_connect_unsafe_api_in_the_package():
    found = []
    for name, text in _sources():
        code = "\n".join(line.split("#", 1)[0] for line in text.splitlines())  # comments may mention them
        for pattern in FORBIDDEN:
            for m in re.finditer(pattern, code):
                found.append(f"{name}:{code.count(chr(10), 0, m.start()) + 1}: {m.group(0)}")
    assert not found, found


def _driver_collects(name: str, text: str):
    tree = ast.parse(text)
    for func in ast.walk(tree):
        if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(func):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                if node.func.attr in ("collect", "first", "toPandas", "toLocalIterator"):
                    yield f"{name}:{func.name}", node.func.attr, node.lineno


def test_collects_are_summary_sized():
    seen, bad = set(), []
    for name, text in _sources():
        for where, attr, line in _driver_collects(name, text):
            if attr in ("toPandas", "toLocalIterator"):
                bad.append(f"{where} line {line}: {attr} brings rows to the driver")
            elif where not in ALLOWED_COLLECTS:
                bad.append(f"{where} line {line}: {attr}() is not in the allow-list of summary-sized collects")
            seen.add(where)
    assert not bad, bad
    # nested functions are visited with their parents; keep the list honest both ways
    assert not set(ALLOWED_COLLECTS) - seen, set(ALLOWED_COLLECTS) - seen
