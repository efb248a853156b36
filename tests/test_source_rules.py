"""Rules checked on the package source: layering, Spark Connect safety, nothing row-level to the driver.

* Layers: every ``sparknoise`` import (module level or inside a function) points down the layer
  order below, and the import graph has no cycle. One deliberate lazy upward import is allowed:
  ``LabelIssuesResult.report()`` reaching the report package.
* ``import sparknoise`` loads neither matplotlib nor the job plumbing.
* Connect safety: fails on ``sparkContext``, ``.rdd``, ``_jvm``, ``_jdf``, ``.cache(`` and ``.persist(``
  anywhere in ``sparknoise/`` (every subpackage), on any ``toPandas``, on a ``toLocalIterator`` outside
  STREAMED (rows written to a local file as they stream, one partition at a time), and on a
  ``collect()``/``first()`` outside the allow-list below: the functions whose collects are
  summary-sized (the bound is in the comment).
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys

PACKAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "sparknoise")
FORBIDDEN = [r"\bsparkContext\b", r"\.rdd\b", r"\b_jvm\b", r"\b_jdf\b", r"\.cache\(", r"\.persist\("]

# toLocalIterator: the driver holds one partition of rows at a time and writes them out as they come
STREAMED = {
    "jobs/review.py:export_queue": "the review queue, streamed into the local export file",
}

ALLOWED_COLLECTS = {
    "core/fit_quality.py:probability_fit": "one row per class: counts, hits, summed log loss",
    "jobs/tables.py:_drop_scratch_tables": "the table names of one schema (SHOW TABLES)",
    "ml/clean_learning.py:_exists": "limit(1): does a path exist",
    "ml/clean_learning.py:_read_metadata": "one metadata line",
    "core/confident_joint.py:count_confident_joint": "K x K counts",
    "core/confident_joint.py:_with_histogram": "2K² counts + <= TOP_Q_FACTOR x HISTOGRAM_BUDGET histogram entries",
    "ml/cross_validation.py:label_classes": "limit(max_classes + 1) distinct labels",
    "ml/cross_validation.py:_validated_folds": "n_folds counts",
    "ml/cross_validation.py:cross_val_predict_proba": "limit(1): one unknown label for the message",
    "jobs/demo.py:run_demo": "one aggregate row",
    "cleaning/apply.py:_check_verdicts": "one aggregate row (<= 3 example ids per problem)",
    "cleaning/result.py:summary": "<= 4 actions x 3 sources counts",
    "cleaning/apply.py:_verdict_summary": "one aggregate row (counts and an id checksum)",
    "cleaning/apply.py:_decided_summary": "<= 4 actions x 4 sources x 2 x splits count rows (and id checksums)",
    "jobs/apply.py:_counts": "<= 3 + 12 counts, splits x 4 counts",
    "jobs/apply.py:_commit_versions": "one row per table written (the newest version of its commits)",
    "jobs/tables.py:commit_version": "one aggregate row over the commit history",
    "cleaning/releases.py:release_row": "limit(1): one release's row",
    "jobs/publish.py:list_releases": "one row per release (a release is a human act: few)",
    "jobs/report.py:cleaning_details": "splits x actions x sources counts, limit(MAX_CORRECTIONS) audit rows",
    "jobs/review.py:import_verdicts": "one aggregate row",
    "regression/inputs.py:check_values": "one aggregate row; limit(5) example ids",
    "regression/issues.py:_check_uncertainty_column": "one aggregate row",
    "regression/issues.py:flag": "<= RANK_BUCKETS bucket counts",
    "regression/selection.py:nth_smallest": "one aggregate row",
    "regression/learn.py:_sums": "one aggregate row",
    "regression/learn.py:find_label_issues": "one aggregate row (the label mean, the features' size)",
    "regression/learn.py:_aleatoric": "one aggregate row",
    "regression/selection.py:_counts": "<= n_buckets bucket counts",
    "regression/gram.py:gram_sums": "<= MAX_GROUPS groups' (p + 2)(p + 3) / 2 Gram sums, p <= MAX_FEATURES",
    "regression/learn.py:_gram_route": "one aggregate row (the feature means)",
    "regression/selection.py:_pick": "limit(max rank) (value, id) pairs, <= FINAL_ROWS unless one value ties more",
    "jobs/run_log.py:latest_apply": "limit(1): one run's metrics",
    "noise/evaluation.py:_flag_metrics": "one aggregate row",
    "noise/evaluation.py:_accuracy": "one aggregate row",
    "ml/folds.py:assign_folds": "K x n_folds bucket counts",
    "ml/multilabel_folds.py:tag_classes": "one aggregate row, or limit(max_classes + 1) distinct tags",
    "ml/multilabel_folds.py:fit_one_vs_rest": "one aggregate row: K + 1 tag counts",
    "ml/multilabel_folds.py:multilabel_oof": "limit(1): one unknown tag for the message; n_folds rows of K + 1 counts",
    "jobs/inject.py:run_inject": "one aggregate row",
    "core/invalid_rows.py:screen_invalid": "one aggregate row",
    "core/label_issues.py:find_label_issues": "<= RANK_BUCKETS x K bucket counts",
    "noise/injection.py:_profile": "<= K + 2 class counts",
    "noise/injection.py:_check_unique_ids": "<= 3 example ids",
    "noise/multilabel_noise.py:tag_profile": "<= K + 2 tag counts",
    "noise/multilabel_evaluation.py:tag_flag_metrics": "one aggregate row of 1 + 2 x detectors sums",
    "noise/multilabel_evaluation.py:tag_fit_metrics": "one aggregate row of 3K + 2 sums",
    "noise/regression_noise.py:label_stats": "<= ~2,100 rows: one per binary exponent of the label",
    "noise/regression_evaluation.py:regression_detection_metrics": "one aggregate row",
    "noise/regression_evaluation.py:regression_fit_metrics": "one aggregate row",
    "noise/segments.py:assign_segments": "<= groups x buckets counts",
    "report/data.py:quality_histogram": "<= 2 x bins counts",
    "report/data.py:top_rows": "limit(top) rows for the report",
    "jobs/report.py:annotator_data": "limit(MAX_ANNOTATORS) annotators",
    "jobs/report.py:regression_summary": "limit(REGRESSION_SAMPLE) rows, one quantile row, <= 2 x RESIDUAL_BINS counts",
    "jobs/annotators.py:run_annotators": "one aggregate row",
    "jobs/audit.py:_row_counts": "one aggregate row",
    "jobs/report.py:audit_data": "issue types x top worst rows, limit(top) sets, pairs and groups",
    "jobs/run_log.py:run_row": "limit(2): one run's row",
    "core/selection.py:_histogram_scan": "<= HISTOGRAM_BUDGET histogram entries",
    "core/selection.py:find_cutoffs": "one row per active cell",
    "jobs/tables.py:check_output_location": "one detail row",
    "jobs/tables.py:latest_version": "one history row",
    "core/validation.py:num_classes_of": "limit(1)",
    "core/validation.py:_arrow_pass": "3K class sums, problem counts, a bounded histogram, one id run per task",
    "core/validation.py:_ids_proven_unique_natively": "limit(MAX_ID_RUNS + 1) id runs",
    "core/native_stats.py:class_stats_native": "<= K + 4 rows (one per clamped label index)",
    "core/validation.py:_check_ids": "limit(5) example ids",
    "multiannotator/bundle.py:annotator_positions": "the M distinct annotator ids",
    "multiannotator/bundle.py:build": "one aggregate row",
    "multiannotator/bundle.py:_annotator_grid": "<= M x K (annotator, label) counts",
    "multiannotator/calibration.py:best_temperature": "one row of 33 sums",
    "multiannotator/active_learning.py:_check_pool_width": "one aggregate row",
    "multiannotator/crowdlab.py:round_stats": "<= K rows, one per consensus class",
    "multiannotator/crowdlab.py:annotator_rows": "<= M x K (annotator, label) statistics",
    "multilabel/inputs.py:num_classes_of": "limit(1)",
    "multilabel/inputs.py:profile": "5K class sums + <= 9 problem counts + 1 row count",
    "multilabel/inputs.py:check_ids": "limit(5) example ids",
    "multilabel/issues.py:_confident_joints": "4K joint cells + K issue counts + 1 + <= HISTOGRAM_ENTRIES histogram entries",
    "multilabel/issues.py:find_multilabel_issues": "<= RANK_BUCKETS + 1 rows of 2K + 1 counts",
    "audit/inputs.py:profile": "one aggregate row; limit(5) example ids",
    "audit/quantiles.py:_brackets": "one aggregate row: min/max, or 2 approximate quantiles per rank",
    "audit/quantiles.py:order_statistics": "one aggregate row: counts and ~4 N / ACCURACY values per rank",
    "audit/issues.py:class_thresholds": "<= MAX_CLASSES + 1 rows, one per label value",
    "audit/issues.py:class_imbalance": "<= MAX_CLASSES + 1 label counts",
    "audit/issues.py:underperforming_group": "<= MAX_GROUPS + 1 group statistics",
    "audit/duplicates.py:components": "one aggregate row per round (<= MAX_ROUNDS)",
    "audit/find.py:find_data_issues": "one aggregate row (counts and mean scores per issue type)",
    "audit/approximate.py:fit_centroids": "n_cells rows: the KMeans centroids (<= MAX_CELLS x d)",
    "audit/approximate.py:knn": "<= n_cells rows: the rows per cell",
    "audit/approximate.py:tune_probes": "<= n_cells rows: a histogram of the sampled true neighbours' cell ranks",
    "regression/scores.py:_exact_sums": "<= 8 terms x ~2,100 binary exponents: exact sums per exponent",
    "regression/scores.py:_exact_route": "one row: the median of the neighbour distances",
    "regression/scores.py:_approximate_route": "<= GRID_CELLS^2 = 65,536 occupied grid cells' counts",
}


def _sources():
    """(path relative to the package, source) of every module, subpackages included."""
    for folder, dirs, files in os.walk(PACKAGE):
        dirs[:] = sorted(d for d in dirs if not d.startswith(("_", ".")))
        for name in sorted(files):
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                with open(path) as f:
                    yield os.path.relpath(path, PACKAGE).replace(os.sep, "/"), f.read()


# Lower layers never import higher ones. The package facade (``sparknoise/__init__.py``) sits on top
# and nothing inside the package imports it.
LAYERS = [
    ("sparknoise._version", "sparknoise.errors", "sparknoise.storage"),
    ("sparknoise.core",),
    ("sparknoise.ml",),
    ("sparknoise.noise", "sparknoise.cleaning", "sparknoise.multiannotator", "sparknoise.multilabel",
     "sparknoise.regression", "sparknoise.audit"),
    ("sparknoise.report",),
    ("sparknoise.jobs",),
    ("sparknoise.cli",),
    ("sparknoise",),
]
ALLOWED_UPWARD = {
    ("sparknoise.core.result", "sparknoise.report.data"): "LabelIssuesResult.report(), lazily",
    ("sparknoise.core.result", "sparknoise.report.html"): "LabelIssuesResult.report(), lazily",
    ("sparknoise.ml.clean_learning", "sparknoise.multilabel.learn"): "CleanLearning(task='multilabel').fit, lazily",
}


def _module_name(relpath: str) -> str:
    parts = ["sparknoise", *relpath[:-3].split("/")]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _layer(module: str) -> int:
    best = None
    for i, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if module == prefix or (prefix != "sparknoise" and module.startswith(prefix + ".")):
                best = i
    assert best is not None, f"{module} is in no layer: add it to LAYERS"
    return best


def _import_graph() -> dict[str, set[str]]:
    """module -> the sparknoise modules it imports anywhere in its body."""
    modules = {_module_name(rel): text for rel, text in _sources()}
    graph = {}
    for module, text in modules.items():
        targets = set()
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Import):
                targets |= {a.name for a in node.names if a.name.split(".")[0] == "sparknoise"}
            elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "sparknoise":
                for alias in node.names:
                    sub = f"{node.module}.{alias.name}"
                    targets.add(sub if sub in modules else node.module)
        graph[module] = targets - {module}
    return graph


def test_imports_point_down_the_layers():
    bad = []
    for module, targets in _import_graph().items():
        for target in targets:
            if _layer(target) > _layer(module) and (module, target) not in ALLOWED_UPWARD:
                bad.append(f"{module} imports {target} (a higher layer)")
    assert not bad, bad


def test_no_import_cycles():
    graph = _import_graph()
    for (a, b) in ALLOWED_UPWARD:
        graph[a].discard(b)
    state, cycles = {}, []

    def visit(node, stack):
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                cycles.append(" -> ".join([*stack[stack.index(nxt):], nxt]))
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not cycles, cycles


def test_importing_the_package_loads_no_plotting_or_job_plumbing():
    code = ("import sys, sparknoise; bad = sorted(m for m in sys.modules if m.split('.')[0] == 'matplotlib' "
            "or m.startswith(('sparknoise.jobs', 'sparknoise.report', 'sparknoise.cli'))); print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]", out


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
                if node.func.attr in ("collect", "first", "toArrow", "toPandas", "toLocalIterator"):
                    yield f"{name}:{func.name}", node.func.attr, node.lineno


def test_collects_are_summary_sized():
    seen, bad = set(), []
    for name, text in _sources():
        for where, attr, line in _driver_collects(name, text):
            if attr == "toLocalIterator" and where in STREAMED:
                pass
            elif attr in ("toPandas", "toLocalIterator"):
                bad.append(f"{where} line {line}: {attr} brings rows to the driver")
            elif where not in ALLOWED_COLLECTS:
                bad.append(f"{where} line {line}: {attr}() is not in the allow-list of summary-sized collects")
            seen.add(where)
    assert not bad, bad
    # nested functions are visited with their parents; keep the list honest both ways
    assert not (set(ALLOWED_COLLECTS) | set(STREAMED)) - seen, (set(ALLOWED_COLLECTS) | set(STREAMED)) - seen


def _is_broadcast(node) -> bool:
    return (isinstance(node, ast.Call) and isinstance(node.func, (ast.Attribute, ast.Name))
            and getattr(node.func, "attr", getattr(node.func, "id", None)) == "broadcast")


def test_broadcast_hints_are_on_a_side_the_join_can_build():
    # Spark cannot broadcast the preserved side of an outer join: the hint is dropped with a HintErrorLogger
    # warning on the console ("build right for right outer join"). Broadcast the other side, or no hint.
    bad = []
    for name, text in _sources():
        for node in ast.walk(ast.parse(text)):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "join"):
                continue
            how = node.args[2] if len(node.args) > 2 else next((k.value for k in node.keywords if k.arg == "how"), None)
            if not isinstance(how, ast.Constant) or not isinstance(how.value, str):
                continue
            kind = how.value.lower().replace("_", "")
            left, right = node.func.value, node.args[0] if node.args else None
            if (kind in ("right", "rightouter", "full", "fullouter", "outer") and _is_broadcast(right)) or \
                    (kind in ("left", "leftouter", "leftsemi", "semi", "leftanti", "anti", "full", "fullouter",
                              "outer") and _is_broadcast(left)):
                bad.append(f"{name}:{node.lineno}: broadcast hint on the preserved side of a {how.value} join")
    assert not bad, bad
