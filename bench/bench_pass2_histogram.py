"""Stage probe: native-route pass 2 (confident joint + selection histogram), explode vs per-task bincounts.

On the benchmark's N x K Delta table (bench_find_label_issues.py generates it), in one Spark session,
alternating the two ways of counting pass 2 so that both see the same machine load:
  * ``explode``: the route until 2026-12-03: each row's pass-2 code and its candidates' histogram indices
    (native_selection.histogram_entries, 256 buckets per cell at K = 10) exploded into one hash count;
  * ``bincount``: the library's pass 2 now (confident_joint.count_confident_joint with a histogram plan):
    one mapInArrow over the label and probabilities, per-task numpy bincounts at buckets_for's resolution.
Both must give the same confident joint and issue count, and histograms with the same number of keys.
Then, for each, the selection (find_cutoffs) from its histogram: the number of boundary keys and its time.
Records the 1/5/15-minute load averages before and after; writes JSON (bench/results/pass2_histogram.json).

    flock /tmp/sparknoise-bench.lock .venv/bin/python bench/bench_pass2_histogram.py --n 10000000 --classes 10
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000_000)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--data", default=os.path.expanduser("~/.cache/sparknoise/bench-data"))
    parser.add_argument("--out", default=os.path.join(HERE, "results", "pass2_histogram.json"))
    args = parser.parse_args()

    import numpy as np
    from pyspark.sql import functions as F

    from sparknoise.core import label_issues, native_selection, selection
    from sparknoise.core.confident_joint import count_confident_joint, decode_pass2_codes
    from sparknoise.core.constants import CONFIDENT_SLACK
    from sparknoise.core.estimates import confident_thresholds
    from sparknoise.core.inputs import LABEL_INDEX, PROBS, prepare_input, validated
    from sparknoise.core.row_expressions import guessed_true_label, keep_out
    from sparknoise.core.validation import num_classes_of, profile_input
    from sparknoise.jobs.session import local_spark

    logging.getLogger("sparknoise").setLevel(logging.WARNING)
    load_start = list(os.getloadavg())
    spark = local_spark("sparknoise-bench-pass2", master="local[2]", driver_memory="2g")
    path = os.path.join(args.data, f"probs_n{args.n}_k{args.classes}")
    prepared = prepare_input(spark.read.format("delta").load(path), label_col="label", probs_col="pred_probs",
                             id_col="id", classes=None)
    K = num_classes_of(prepared)
    profile = profile_input(prepared, check_unique_ids=False, num_classes=K, native=True)
    prepared = validated(prepared)
    thresholds = confident_thresholds(profile.label_counts, profile.self_confidence_sums)
    universe = label_issues._universe("prune_by_noise_rate", K)
    n_cells = sum(p.n_cells for p in universe)
    plans = {"explode": selection.HistogramPlan(tuple(universe), selection.native_buckets_for(n_cells)),
             "bincount": selection.HistogramPlan(tuple(universe), selection.buckets_for(n_cells))}

    def explode_pass(plan):  # the pass-2 code of main before 2026-12-03 (confident_joint.py)
        probs, label = F.col(PROBS), F.col(LABEL_INDEX)
        guess = guessed_true_label(probs, np.asarray(thresholds, dtype=np.float64) - CONFIDENT_SLACK)
        off = (guess != label) & ~keep_out(probs, label, K)
        g, o = F.col("guess"), F.col("off")
        own = F.when(g >= 0, -F.lit(1) - ((label * F.lit(K) + g) * F.lit(2) + o.cast("int")))
        codes = F.concat(F.array(own.cast("long")), native_selection.histogram_entries(plan, probs, label))
        merged = (prepared.df.select(label, probs, guess.alias("guess"), off.alias("off"))
                  .select(F.explode(codes).alias("code")).filter(F.col("code").isNotNull())
                  .groupBy("code").count().collect())  # benchmark-only, as the library's bound
        return decode_pass2_codes([int(r["code"]) for r in merged], [int(r["count"]) for r in merged], K,
                                  plan.n_buckets)

    def bincount_pass(plan):
        c = count_confident_joint(prepared, thresholds, K, histogram=plan)
        return c.confident_joint, c.num_label_issues, c.histogram_entries

    runs, results = [], {}
    for rep in range(args.repeats):
        for name, fn in (("explode", explode_pass), ("bincount", bincount_pass)):
            t = time.perf_counter()
            cj, issues, entries = fn(plans[name])
            runs.append({"way": name, "repeat": rep, "pass2_s": round(time.perf_counter() - t, 2),
                         "load_1m": os.getloadavg()[0]})
            print(runs[-1], flush=True)
            results[name] = (cj, issues, entries)
    (cj_a, iss_a, ent_a), (cj_b, iss_b, ent_b) = results["explode"], results["bincount"]
    same = bool(np.array_equal(cj_a, cj_b) and iss_a == iss_b and sum(e[2] for e in ent_a) == sum(e[2] for e in ent_b))

    # the selection that follows, from each histogram (prune_by_noise_rate's quotas from this joint)
    from sparknoise.core.confident_joint import calibrate_confident_joint, clip_diagonal

    calibrated = calibrate_confident_joint(clip_diagonal(cj_b), profile.label_counts)
    problem = label_issues._selections("prune_by_noise_rate", profile, calibrated, iss_b, min_examples_per_class=1,
                                       frac_noise=1.0, num_to_remove_per_class=None)[0]
    source = prepared.df.select(LABEL_INDEX, PROBS, "id")
    selections, cutoffs = {}, {}
    for name in ("explode", "bincount"):
        plan = plans[name]
        hist = plan.split(results[name][2])[0]
        active = np.flatnonzero((problem.quotas > 0) & (problem.quotas < problem.candidates_per_cell))
        boundary, _ = selection._locate(hist[active], problem.quotas, active, problem.n_cells)
        keys = int(hist[active, boundary[active]].sum())
        t = time.perf_counter()
        cutoffs[name] = selection.find_cutoffs(
            source, problem, num_classes=K, id_type=prepared.id_type, histogram=hist,
            boundary_prefilter=lambda b, nb: native_selection.boundary_prefilter(
                problem, probs=F.col(PROBS), label=F.col(LABEL_INDEX), n_buckets=nb, boundary=b))
        selections[name] = {"n_buckets": plan.n_buckets, "boundary_keys": keys,
                            "selection_s": round(time.perf_counter() - t, 2), "load_1m": os.getloadavg()[0]}
        print(name, selections[name], flush=True)
    same_cutoffs = bool(np.array_equal(cutoffs["explode"].key_star, cutoffs["bincount"].key_star)
                        and cutoffs["explode"].id_star == cutoffs["bincount"].id_star)
    doc = {"benchmark": "pass2_histogram", "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "n": args.n, "k": K, "spark": "local[2], 2g driver", "runs": runs, "selection": selections,
           "same_joint_and_histogram_total": same, "same_cutoffs": same_cutoffs,
           "loadavg_start": load_start, "loadavg_end": list(os.getloadavg())}
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(doc, f, indent=2)
    print(json.dumps({k: doc[k] for k in ("same_joint_and_histogram_total", "same_cutoffs", "loadavg_start",
                                          "loadavg_end")}))
    spark.stop()


if __name__ == "__main__":
    main()
