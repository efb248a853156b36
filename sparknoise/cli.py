"""The ``sparknoise`` command: detect | demo | inject | evaluate | report | review export|import | apply | publish |
releases | annotators | audit.

Options: ``--config FILE`` (YAML), repeatable ``--set key.path=value`` and, for Databricks
``python_wheel_task`` named parameters, ``--key.path=value``. Exit code 0 on success, 2 on a
configuration or input error (one line on stderr naming the key or column), 1 otherwise.
"""

from __future__ import annotations

import argparse
import logging
import sys

from sparknoise.errors import SparkNoiseError
from sparknoise.jobs.session import job_session

log = logging.getLogger("sparknoise")


def _config_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", help="YAML config (see conf/detect.yaml for every key)")
    parser.add_argument("--set", metavar="KEY=VALUE", action="append", default=[], dest="overrides",
                        help="override one key, value parsed as YAML (repeatable), e.g. --set input.path=/data/t")
    parser.add_argument("--log-level", default="INFO", help="sparknoise log level (default INFO)")


def _keys(job: str, example: str) -> str:
    from sparknoise.jobs.config import job_keys

    return f"Config keys (YAML via --config, or --set key=value; see {example}): {', '.join(job_keys(job))}."


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(
        prog="sparknoise",
        description="Find mislabeled rows with Confident Learning on Spark. Keys may also be given as "
        "--key.path=value (e.g. --input.path=/data/t).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    detect = sub.add_parser("detect", help="find label issues in a table and write scored/issues/runs Delta tables",
                            description=_keys("detect", "conf/detect.yaml"))
    _config_args(detect)
    demo = sub.add_parser("demo", help="generate a noisy dataset as a local Delta table and run detect on it")
    demo.add_argument("--rows", type=int, default=200_000)
    demo.add_argument("--classes", type=int, default=5)
    demo.add_argument("--noise", type=float, default=0.15)
    demo.add_argument("--out", default="demo-output", help="folder for the local Delta tables")
    demo.add_argument("--log-level", default="INFO")
    inject = sub.add_parser(
        "inject", help="write a noisy copy of a table (known flips in true_label / is_noisy)",
        description=_keys("inject", "conf/inject.yaml"))
    _config_args(inject)
    evaluate = sub.add_parser(
        "evaluate", help="measure detection quality and what cleaning recovers, on injected noise",
        description=_keys("evaluate", "conf/evaluate.yaml"))
    _config_args(evaluate)
    report = sub.add_parser(
        "report", help="write the HTML report of a detect, apply, annotators or audit run",
        description="Reads the run's rows of the runs, issues and scored tables (found through --config / --set "
        "output.runs=..., output.issues=..., output.scored=...; for an audit run output.data_issues, "
        "output.duplicate_sets, output.leakage) and writes one self-contained HTML file.")
    report.add_argument("--run-id", required=True, help="the run to describe (run_id in the runs table)")
    report.add_argument("--output", metavar="FILE", help="HTML file to write (default report-<run id>.html)")
    report.add_argument("--top", type=int, default=50, help="how many of the most suspicious rows to list (an audit run: per issue type, and "
                        "the largest duplicate sets, leakage pairs and weakest groups)")
    _config_args(report)
    loop_keys = ("Tables from --config / --set: output.scored, output.issues, output.runs, output.reviews, "
                 "output.cleaned, output.audit (one config file serves detect and the whole cleaning loop).")
    review = sub.add_parser("review", help="the review queue: export it for reviewers, import their verdicts")
    review_sub = review.add_subparsers(dest="review_command", required=True)
    export = review_sub.add_parser(
        "export", help="write a detect run's flagged rows (most suspicious first) for reviewers",
        description="Columns: id, given_label, suggested_label, label_quality, issue_rank, confidence and the run's "
        "passthrough columns. Label Studio (.json): a task list with the suggested label pre-selected, and its "
        "labeling config in <name>.label_config.xml. " + loop_keys)
    export.add_argument("--run-id", required=True, help="the detect run whose queue to export")
    export.add_argument("--output", required=True, metavar="FILE", help="file to write (.csv, .jsonl or .json)")
    export.add_argument("--top", type=int, default=None, help="only the N most suspicious rows (default: all)")
    export.add_argument("--where", metavar="SQL", default=None,
                        help="only flagged rows matching a SQL condition over the run's scored columns, e.g. "
                        "\"split = 'test'\" (the test split's queue)")
    export.add_argument("--format", choices=["csv", "jsonl", "labelstudio"], default=None,
                        help="default: from the extension (.csv, .jsonl, .json = Label Studio tasks)")
    _config_args(export)
    imp = review_sub.add_parser(
        "import", help="check a verdicts file and append it to output.reviews",
        description="A verdict: the row's id, decision (keep | relabel | remove), new_label (for relabel: one of "
        "the run's classes), optional reviewer, note, reviewed_at (ISO time). A Label Studio JSON export of the "
        "exported tasks imports too. Any bad verdict stops the import with nothing written. " + loop_keys)
    imp.add_argument("--run-id", required=True, help="the detect run the verdicts are about")
    imp.add_argument("--input", required=True, metavar="FILE", help="verdicts (.csv, .jsonl, or .json from Label Studio)")
    imp.add_argument("--format", choices=["csv", "jsonl", "labelstudio"], default=None)
    imp.add_argument("--allow-unflagged", action="store_true", help="accept verdicts on rows the run did not flag")
    _config_args(imp)
    annotators = sub.add_parser(
        "annotators", help="many annotators per item: consensus labels, annotator quality (CROWDLAB) as Delta tables",
        description=_keys("annotators", "conf/annotators.yaml"))
    _config_args(annotators)
    audit = sub.add_parser(
        "audit", help="data issues of a whole table (duplicates, train/test leakage, outliers, imbalance, nulls, weak "
        "segments): write data_issues/duplicate_sets/leakage Delta tables", description=_keys("audit", "conf/audit.yaml"))
    _config_args(audit)
    apply = sub.add_parser(
        "apply", help="apply verdicts and the unreviewed policy: write output.cleaned and output.audit",
        description="Keys: apply.unreviewed (remove | downweight | relabel | keep), apply.downweight, "
        "apply.relabel_only_high, apply.protect_where, apply.protect_mode (all | policy), apply.split_col. "
        + loop_keys + " See conf/apply.yaml.")
    apply.add_argument("--run-id", required=True, help="the detect run to clean")
    _config_args(apply)
    publish = sub.add_parser(
        "publish", help="record a named, immutable release of a cleaned dataset beside its original",
        description="Pins the detect run's input (location and Delta version) and the cleaned and audit table "
        "versions of an apply run, with counts per split and action, as one row of output.releases and a "
        "RELEASE-<NAME>.md/.json manifest beside it. Publishing an existing name is an error. Tables from --config "
        "/ --set: output.runs, output.cleaned, output.audit, output.releases.")
    publish.add_argument("--run-id", required=True, help="the apply run to publish (a detect run id: its latest apply)")
    publish.add_argument("--release", required=True, metavar="NAME", help="the release name (letters, digits, . _ -)")
    publish.add_argument("--note", default=None, metavar="TEXT", help="a note recorded with the release")
    publish.add_argument("--manifest-dir", default=None, metavar="DIR",
                         help="folder for RELEASE-<NAME>.md/.json (default: beside a local output.releases)")
    _config_args(publish)
    releases = sub.add_parser("releases", help="list the published releases (output.releases)",
                              description="One entry per release, oldest first. Table from --config / --set: "
                              "output.releases.")
    _config_args(releases)
    return parser


def split_dotted(argv: list[str]) -> tuple[list[str], list[str]]:
    """Turn ``--key.path=value`` / ``--key.path value`` into overrides; return (rest, overrides)."""
    rest, overrides = [], []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg.startswith("--") and "." in arg.split("=", 1)[0]:
            key = arg[2:]
            if "=" in key:
                overrides.append(key)
            elif i + 1 < len(argv):
                overrides.append(f"{key}={argv[i + 1]}")
                i += 1
            else:
                overrides.append(f"{key}=")
        else:
            rest.append(arg)
        i += 1
    return rest, overrides


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``sparknoise`` console script and of jobs/*.py."""
    argv = list(sys.argv[1:] if argv is None else argv)
    rest, dotted = split_dotted(argv)
    args = build_parser().parse_args(rest)
    logging.basicConfig(level=getattr(logging, str(args.log_level).upper(), logging.INFO),
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("py4j").setLevel(logging.WARNING)
    try:
        if args.command == "demo":
            from sparknoise.jobs.demo import run_demo

            run_demo(rows=args.rows, classes=args.classes, noise=args.noise, out=args.out)
            return 0
        from sparknoise.jobs.config import load_config

        cfg = load_config(args.config, [*args.overrides, *dotted], job=args.command)
        spark = job_session(f"sparknoise-{args.command}")
        if args.command == "report":
            from sparknoise.jobs.report import run_report

            path = run_report(spark, cfg, args.run_id, args.output or f"report-{args.run_id}.html", top=args.top)
            print(f"report of run {args.run_id}: {path}")
            return 0
        if args.command == "review" and args.review_command == "export":
            from sparknoise.jobs.review import export_queue

            files, n = export_queue(spark, cfg, args.run_id, args.output, top=args.top, fmt=args.format,
                                    where=args.where)
            print(f"review queue of run {args.run_id}: {n} rows in {' and '.join(files)}")
            return 0
        if args.command == "review":
            from sparknoise.jobs.review import import_verdicts

            n = import_verdicts(spark, cfg, args.run_id, args.input, fmt=args.format,
                                allow_unflagged=args.allow_unflagged)
            print(f"run {args.run_id}: {n} verdicts imported into {cfg['output']['reviews']}")
            return 0
        if args.command == "apply":
            from sparknoise.jobs.apply import run_apply
            from sparknoise.jobs.apply import summary_lines as apply_lines

            record = run_apply(spark, cfg, args.run_id)
            for line in apply_lines(record):
                print(line)
            print(f"tables: {cfg['output']['cleaned']} {cfg['output']['audit']}")
            return 0
        if args.command == "publish":
            from sparknoise.jobs.publish import release_lines, run_publish

            row = run_publish(spark, cfg, args.run_id, args.release, note=args.note, manifest_dir=args.manifest_dir)
            for line in release_lines(row):
                print(line)
            print(f"table: {cfg['output']['releases']}" + (f"; manifest: {row['manifest']}" if row["manifest"] else ""))
            return 0
        if args.command == "releases":
            from sparknoise.jobs.publish import list_releases, release_lines

            rows = list_releases(spark, cfg)
            if not rows:
                print(f"no releases in {cfg['output']['releases']}")
            for row in rows:
                for line in release_lines(row):
                    print(line)
            return 0
        if args.command == "annotators":
            from sparknoise.jobs.annotators import run_annotators
            from sparknoise.jobs.annotators import summary_lines as annotator_lines

            for line in annotator_lines(run_annotators(spark, cfg)):
                print(line)
            return 0
        if args.command == "audit":
            from sparknoise.jobs.audit import run_audit
            from sparknoise.jobs.audit import summary_lines as audit_lines

            for line in audit_lines(run_audit(spark, cfg)):
                print(line)
            return 0
        if args.command == "inject":
            from sparknoise.jobs.inject import run_inject

            record = run_inject(spark, cfg)
            print(f"run {record['run_id']}: wrote {cfg['output']['noisy']}: {record['n_rows']} rows, "
                  f"{record['num_flagged']} labels flipped ({cfg['inject']['mode']})")
            return 0
        if args.command == "evaluate":
            from sparknoise.jobs.evaluate import format_tables, run_evaluate

            record, result = run_evaluate(spark, cfg)
            print(format_tables(result))
            print(f"run {record['run_id']}: tables {cfg['output']['detection']} {cfg['output']['impact']}; "
                  f"plots in {cfg['output']['plots']}")
            return 0
        from sparknoise.jobs.detect import run_detect, summary_lines

        record = run_detect(spark, cfg)
        for line in summary_lines(record):
            print(line)
        return 0
    except SparkNoiseError as e:
        print(f"sparknoise: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
