"""Play the reviewer on a demo review queue: the README's stand-in for a human with the demo's known truth.

    .venv/bin/python dev/play_reviewer.py demo-output/queue.csv demo-output/verdicts.csv --top 20 --reviewer ann

Reads the queue (a `review export` CSV), looks the rows' true labels up in the demo's scored table (the
queue shows the features, never the answer) and writes a verdicts CSV: `keep` where the given label is
the true one, else `relabel` to it, for the first `--top` rows (the rest left unreviewed).
"""

from __future__ import annotations

import argparse
import csv


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("queue")
    ap.add_argument("verdicts")
    ap.add_argument("--top", type=int, default=20, help="how many rows to review (first in the queue)")
    ap.add_argument("--reviewer", default="ann")
    ap.add_argument("--reviewed-at", default="2026-11-29T12:00:00Z")
    ap.add_argument("--scored", default="demo-output/scored", help="the demo's scored table (holds true_label)")
    args = ap.parse_args()

    from sparknoise.jobs.session import local_spark

    rows = list(csv.DictReader(open(args.queue)))
    scored = local_spark().read.format("delta").load(args.scored)
    ids = [int(r["id"]) for r in rows[: args.top]]
    truth = {str(r.id): str(r.true_label)
             for r in scored.where(scored.id.isin(ids)).select("id", "true_label").distinct().collect()}
    for r in rows[: args.top]:
        r.update(reviewer=args.reviewer, reviewed_at=args.reviewed_at, note="checked the source",
                 **({"decision": "keep"} if truth[r["id"]] == r["given_label"]
                    else {"decision": "relabel", "new_label": truth[r["id"]]}))
    with open(args.verdicts, "w", newline="") as f:
        out = csv.DictWriter(f, fieldnames=list(rows[0]))
        out.writeheader()
        out.writerows(rows)
    print(f"{min(args.top, len(rows))} of {len(rows)} rows reviewed into {args.verdicts}")


if __name__ == "__main__":
    main()
