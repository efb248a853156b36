"""Benchmark: the cleaning loop's apply step at scale, against the cost of writing the scored table.

A detect run (own probabilities, N x K, array<float>) writes scored / issues / runs once (not
timed: the setup). Then, timed:
  * baseline: the run's scored rows read and written to a new Delta table (what writing the scored
    table costs, without detection);
  * review import: a verdicts CSV of --verdicts flagged rows (a third each keep / relabel / remove);
  * apply: ``sparknoise apply`` with those verdicts and the default policy (remove the unreviewed
    flagged rows): the cleaned and audit tables written, the runs row recorded.
Prints the times and the ratio apply / baseline (target: at most 1.5) and writes JSON
(bench/results/apply.json by default), with the load average before and after (other work on the
machine slows every figure; the ratios are taken within one run).

``--compare REF`` also runs the same apply job with ``sparknoise/cleaning/apply.py`` and
``sparknoise/jobs/apply.py`` as of the git commit or branch REF (loaded from ``git show``; by default
2f8d402, the three-read version), before the current one, on the same tables and verdicts: before and
after in one run. ``--repeats R`` times each apply R times, alternating before / after, on the same
detect run (the setup is paid once); every apply replaces the previous one's rows.

    .venv/bin/python bench/bench_apply.py --rows 10000000 --classes 10 --verdicts 100000 --compare
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--verdicts", type=int, default=100_000)
    parser.add_argument("--noise", type=float, default=0.2, help="label noise of the generated table")
    parser.add_argument("--data", default=os.path.expanduser("~/.cache/sparknoise/bench-data"))
    parser.add_argument("--out", default=os.path.join(HERE, "results", "apply.json"))
    parser.add_argument("--compare", nargs="?", const="2f8d402", default=None, metavar="REF",
                        help="also time apply with sparknoise/cleaning/apply.py as of git commit REF (default 2f8d402)")
    parser.add_argument("--repeats", type=int, default=1, help="time each apply this many times (alternating)")
    parser.add_argument("--driver-memory", default="2g")
    args = parser.parse_args()
    load_start = list(os.getloadavg())

    import logging

    from pyspark.sql import functions as F

    from sparknoise.jobs.apply import run_apply
    from sparknoise.jobs.config import load_config
    from sparknoise.jobs.detect import run_detect
    from sparknoise.jobs.review import import_verdicts
    from sparknoise.jobs.session import local_spark
    from sparknoise.noise.synthetic import probabilities_table

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("py4j").setLevel(logging.WARNING)
    spark = local_spark("sparknoise-bench-apply", master="local[2]", driver_memory=args.driver_memory,
                        shuffle_partitions=8)
    os.makedirs(args.data, exist_ok=True)
    n, k = args.rows, args.classes
    path = os.path.join(args.data, f"probs_n{n}_k{k}_float_sep2" + ("" if args.noise == 0.2 else f"_noise{args.noise:g}"))
    if not os.path.exists(os.path.join(path, "_delta_log")):
        probabilities_table(spark, n, k, noise_rate=args.noise, seed=11, rows_per_partition=500_000,
                            probs_type="float").write.format("delta").mode("overwrite").save(path)
    with tempfile.TemporaryDirectory(dir=args.data) as tmp:
        out = {name: os.path.join(tmp, name) for name in ("scored", "issues", "runs", "reviews", "cleaned", "audit")}
        overrides = [f"input.path={path}", "input.probs_col=pred_probs", "run.id=bench"]
        overrides += [f"output.{name}={loc}" for name, loc in out.items()]
        cfg = load_config(None, overrides)
        t = time.perf_counter()
        detect = run_detect(spark, cfg)
        t_detect = time.perf_counter() - t
        scored = spark.read.format("delta").load(out["scored"]).filter(F.col("run_id") == "bench")
        t = time.perf_counter()
        scored.write.format("delta").save(os.path.join(tmp, "scored_copy"))
        t_baseline = time.perf_counter() - t
        print(f"detect {t_detect:.1f}s; scored written again {t_baseline:.1f}s; load {os.getloadavg()}", flush=True)
        # the verdicts: the first --verdicts flagged rows by id (benchmark-side collect)
        ids = [r[0] for r in spark.read.format("delta").load(out["issues"]).select("id").orderBy("id")
               .limit(args.verdicts).collect()]
        verdicts = os.path.join(tmp, "verdicts.csv")
        with open(verdicts, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["id", "decision", "new_label", "reviewer"])
            for i, row_id in enumerate(ids):
                decision = ("keep", "relabel", "remove")[i % 3]
                w.writerow([row_id, decision, (row_id % k) if decision == "relabel" else "", "bench"])
        loop_cfg = load_config(None, [f"output.{name}={loc}" for name, loc in out.items()], job="apply")
        t = time.perf_counter()
        imported = import_verdicts(spark, loop_cfg, "bench", verdicts)
        t_import = time.perf_counter() - t
        old_apply = _run_apply_at(args.compare) if args.compare else None
        befores, afters = [], []
        for _ in range(args.repeats):
            if old_apply is not None:
                t = time.perf_counter()
                old_record = old_apply(spark, loop_cfg, "bench")
                befores.append({"apply_s": round(time.perf_counter() - t, 2),
                                "apply_timings": json.loads(old_record["timings"]),
                                "counts": json.loads(old_record["metrics"])["counts"],
                                "loadavg": list(os.getloadavg())})
                print(f"before run {len(befores)}: apply {befores[-1]['apply_s']:.1f}s = "
                      f"{befores[-1]['apply_s'] / t_baseline:.2f}x; {befores[-1]}", flush=True)
            t = time.perf_counter()
            record = run_apply(spark, loop_cfg, "bench")
            afters.append({"apply_s": round(time.perf_counter() - t, 2), "apply_timings": json.loads(record["timings"]),
                           "counts": json.loads(record["metrics"])["counts"], "loadavg": list(os.getloadavg())})
            print(f"after run {len(afters)}: apply {afters[-1]['apply_s']:.1f}s = "
                  f"{afters[-1]['apply_s'] / t_baseline:.2f}x; {afters[-1]}", flush=True)
        t_apply = min(a["apply_s"] for a in afters)
        before = None
        if befores:
            before = {"ref": args.compare, "apply_s": min(b["apply_s"] for b in befores), "runs": befores,
                      "apply_timings": min(befores, key=lambda b: b["apply_s"])["apply_timings"],
                      "counts": befores[0]["counts"]}
            before["apply_over_baseline"] = round(before["apply_s"] / t_baseline, 2)
    counts = afters[0]["counts"]
    for run in [*befores, *afters]:
        assert run["counts"] == counts, (run["counts"], counts)  # the same decisions every time, before and after
    result = {
        "rows": n, "classes": k, "noise_rate": args.noise, "verdicts": imported, "num_flagged": detect["num_flagged"],
        "detect_s": round(t_detect, 2), "baseline_scored_write_s": round(t_baseline, 2),
        "review_import_s": round(t_import, 2), "apply_s": round(t_apply, 2),
        "apply_over_baseline": round(t_apply / t_baseline, 2),
        "apply_timings": min(afters, key=lambda a: a["apply_s"])["apply_timings"], "runs": afters,
        "repeats": args.repeats,
        "counts": counts, "before": before, "loadavg_start": load_start, "loadavg_end": list(os.getloadavg()),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                 cwd=HERE).stdout.strip(),
    }
    print(f"N={n:,} K={k}: detect {t_detect:.1f}s; scored table written again {t_baseline:.1f}s; "
          f"review import of {imported:,} verdicts {t_import:.1f}s; apply {t_apply:.1f}s "
          f"= {t_apply / t_baseline:.2f}x the scored write (target <= 1.5x)")
    if before is not None:
        print(f"before ({before['ref']}): apply {before['apply_s']:.1f}s = {before['apply_over_baseline']:.2f}x the "
              f"scored write; timings {before['apply_timings']}")
    print(f"after: timings {result['apply_timings']}; load average {load_start} -> {result['loadavg_end']}")
    print(f"counts: {counts}")
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    print(f"wrote {args.out}")


def _module_at(ref: str, path: str):
    """The module at ``path`` as of git commit ``ref`` (its source from ``git show``, executed apart)."""
    import types

    source = subprocess.run(["git", "show", f"{ref}:{path}"], capture_output=True, text=True,
                            cwd=HERE, check=True).stdout
    module = types.ModuleType(f"sparknoise_{path.replace('/', '_').removesuffix('.py')}_{ref.replace('-', '_')}")
    sys.modules[module.__name__] = module  # (dataclasses look their module up)
    exec(compile(source, f"{ref}:{path}", "exec"), module.__dict__)  # noqa: S102
    return module


def _run_apply_at(ref: str):
    """``run_apply`` as of git commit ``ref``: its job module with that commit's ``apply_cleaning`` (the
    helpers they import, tables and run log, are the current ones)."""
    cleaning = _module_at(ref, "sparknoise/cleaning/apply.py")
    job = _module_at(ref, "sparknoise/jobs/apply.py")
    job.apply_cleaning = cleaning.apply_cleaning
    return job.run_apply


if __name__ == "__main__":
    main()
