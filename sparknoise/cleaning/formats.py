"""The review queue's file formats and the verdict files reviewers send back (driver side, plain Python).

Queue (export): ``csv``, ``jsonl`` (one JSON object per row) or ``labelstudio``: a JSON task list
that Label Studio's importer accepts, each task's ``data`` holding the row and a ``predictions``
entry pre-selecting the suggested label (with the model's probability of it as ``score``), plus a
labeling config (``<Choices>`` of the classes and ``remove``) written beside it.

Verdicts (import): ``csv`` or ``jsonl`` with columns ``<id>, decision, new_label, reviewer, note,
reviewed_at`` (an empty cell is missing; a row without a decision is not reviewed yet and is skipped, so the
exported queue itself can be filled in and imported), or a Label Studio JSON export of the tasks above: a
chosen class equal to the given label is ``keep``, another class ``relabel``, ``remove`` is
``remove``; the annotator and time come from the annotation. Parsing checks each row on its own
(decision, new_label among the classes, time); the run-level checks (ids, flags) are the job's.
Every problem is a :class:`InputError` naming the file, the row (or task) and the fix.
"""

from __future__ import annotations

import csv
import datetime as dt
import itertools
import json
import os
from dataclasses import dataclass
from typing import Any, Iterable, Sequence
from xml.sax.saxutils import quoteattr

from sparknoise.cleaning.apply import DECISIONS
from sparknoise.errors import ConfigError, InputError

FORMATS = ("csv", "jsonl", "labelstudio")
# what a label (and a reviewer's new_label) is, per detection task: one class, a set of classes (tags), a number
LABEL_KINDS = {"multiclass": "class", "multilabel": "tags", "regression": "number"}
REMOVE_CHOICE = "remove"
FROM_NAME = "verdict"  # the <Choices> name in the labeling config
TO_NAME = "item"  # the <Text> object it annotates


def format_of(path: str, given: str | None) -> str:
    """The file format: ``given``, else from the extension (.csv, .jsonl, .json = Label Studio)."""
    if given:
        if given not in FORMATS:
            raise ConfigError(f"--format {given!r} is unknown; use one of {list(FORMATS)}")
        return given
    ext = os.path.splitext(path)[1].lower()
    found = {".csv": "csv", ".jsonl": "jsonl", ".json": "labelstudio"}.get(ext)
    if found is None:
        raise ConfigError(f"cannot tell the format of {path!r} from its extension; name it .csv, .jsonl or .json "
                          f"(Label Studio), or pass --format {'|'.join(FORMATS)}")
    return found


def label_config_path(tasks_path: str) -> str:
    """Where the Label Studio labeling config of a task file is written: ``<name>.label_config.xml``."""
    return os.path.splitext(tasks_path)[0] + ".label_config.xml"


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):  # numpy scalars
        value = value.item()
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, float) and value != value:
        return None
    return value


def _shown(value: Any) -> str:
    """A value as the reviewer reads it in a task: numbers to 6 significant digits."""
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list):
        return "[" + ", ".join(_shown(v) for v in value) + "]"
    return str(value)


def label_studio_config(classes: Sequence[Any], *, multiple: bool = False) -> str:
    """The labeling config: the row's fields as text, one choice among the classes and ``remove``
    (``multiple``: a tag set, any number of classes, or ``remove`` alone)."""
    choices = "\n".join(f"    <Choice value={quoteattr(str(c))}/>" for c in [*classes, REMOVE_CHOICE])
    return f"""<View>
  <Header value="Given label: $given_label. sparknoise suggests $suggested_label ($confidence confidence)."/>
  <Text name="{TO_NAME}" value="$item"/>
  <Header value="The right label (or remove the row):"/>
  <Choices name="{FROM_NAME}" toName="{TO_NAME}" choice="{'multiple' if multiple else 'single'}" showInline="true">
{choices}
  </Choices>
</View>
"""


def write_queue(rows: Iterable[dict[str, Any]], path: str, fmt: str, *, classes: Sequence[Any], run_id: str,
                id_col: str, shown: Sequence[str], kind: str = "class") -> tuple[list[str], int]:
    """Write the queue rows (already in issue_rank order); returns (the files written, rows written).

    ``rows`` is any iterable, consumed once and written as it comes (each format is written row by row,
    Label Studio's JSON task list included), so a streamed queue never has to fit in memory. ``kind``
    (``LABEL_KINDS``): for ``tags`` the labels are lists (JSON text in csv) and the Label Studio
    config allows several choices; Label Studio tasks are for class and tag labels. Rows carry
    the export columns plus ``__score`` (the model's probability of the suggested label, used as the
    Label Studio prediction score). ``shown`` are the columns the reviewer reads (the passthrough
    columns, else the run's features), joined into the task's ``item`` text.
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    rows = iter(rows)
    first = next(rows, None)
    if first is None:
        columns = [id_col, "given_label", "suggested_label", "label_quality", "issue_rank", "confidence"]
        stream: Iterable[dict[str, Any]] = ()
    else:
        columns = [k for k in first if not k.startswith("__")]
        stream = itertools.chain([first], rows)
    count = 0
    if fmt == "csv":
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=[*columns, "decision", "new_label", "reviewer", "note",
                                                   "reviewed_at"], extrasaction="ignore")
            writer.writeheader()
            for raw in stream:
                writer.writerow({k: json.dumps(_jsonable(v)) if isinstance(v, (list, tuple)) else _jsonable(v)
                                 for k, v in raw.items()})
                count += 1
        return [path], count
    if fmt == "jsonl":
        with open(path, "w") as f:
            for raw in stream:
                f.write(json.dumps({k: _jsonable(v) for k, v in raw.items() if not k.startswith("__")}) + "\n")
                count += 1
        return [path], count
    if kind == "number":
        raise ConfigError("Label Studio tasks are written for class and tag labels, not numbers; use csv or jsonl")
    with open(path, "w") as f:
        f.write("[")
        for raw in stream:
            r = {k: _jsonable(v) for k, v in raw.items() if not k.startswith("__")}
            item = "\n".join(f"{c}: {_shown(r.get(c))}" for c in shown) or f"{id_col} {r[id_col]}"
            task = {
                "data": {**r, "item": item},
                "predictions": [{
                    "model_version": f"sparknoise-{run_id}",
                    "score": _jsonable(raw.get("__score")),
                    "result": [{"from_name": FROM_NAME, "to_name": TO_NAME, "type": "choices",
                                "value": {"choices": [str(c) for c in r["suggested_label"]] if kind == "tags"
                                          else [str(r["suggested_label"])]}}],
                }],
            }
            f.write(("," if count else "") + "\n" + json.dumps(task, indent=1))
            count += 1
        f.write("\n]\n")
    config = label_config_path(path)
    with open(config, "w") as f:
        f.write(label_studio_config(classes, multiple=kind == "tags"))
    return [path, config], count


@dataclass(frozen=True)
class Verdict:
    """One parsed verdict; ``where`` says which row or task of the file it came from (for messages)."""

    id: Any
    decision: str
    new_label: Any
    reviewer: str | None
    note: str | None
    reviewed_at: dt.datetime | None
    where: str


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip() == "")


def _time(value: Any, where: str, path: str) -> dt.datetime | None:
    if _missing(value):
        return None
    try:
        t = dt.datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"{path}: {where}: reviewed_at {value!r} is not an ISO time such as "
                         "2026-11-29T10:00:00Z") from None
    return t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc)


def _class_value(value: Any, classes: Sequence[Any], where: str, path: str) -> Any:
    by_text = {str(c): c for c in classes}
    found = by_text.get(str(value).strip())
    if found is None:
        raise InputError(f"{path}: {where}: new_label {value!r} is not one of the run's classes "
                         f"{[str(c) for c in classes]}")
    return found


def _new_label(value: Any, kind: str, classes: Sequence[Any], where: str, path: str) -> Any:
    """A reviewer's new_label as the run's label: one class, a tag list (a JSON list, or classes joined by
    ``|``; an empty list is no tags) in class order, or a finite number."""
    if kind == "number":
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = float("nan")
        if number != number or number in (float("inf"), float("-inf")):
            raise InputError(f"{path}: {where}: new_label {value!r} is not a finite number (a regression run's "
                             "new_label is the right value of the target)")
        return number
    if kind == "tags":
        items = value
        if isinstance(value, str):
            text = value.strip()
            try:
                items = json.loads(text) if text.startswith("[") else [t for t in text.split("|") if t.strip()]
            except json.JSONDecodeError:
                raise InputError(f"{path}: {where}: new_label {value!r} is not a tag list; write a JSON list "
                                 '(["a", "b"], [] for none) or the tags joined by |') from None
        if not isinstance(items, (list, tuple)):
            raise InputError(f"{path}: {where}: new_label {value!r} is not a tag list; write a JSON list "
                             '(["a", "b"], [] for none) or the tags joined by |')
        found = {str(_class_value(t, classes, where, path)) for t in items}
        return [c for c in classes if str(c) in found]
    return _class_value(value, classes, where, path)


def _verdict(record: dict[str, Any], where: str, path: str, id_col: str, classes: Sequence[Any],
             kind: str) -> Verdict | None:
    if _missing(record.get("decision")):
        return None  # a queue row nobody has decided yet (the exported queue can be filled in and imported)
    if _missing(record.get(id_col)):
        raise InputError(f"{path}: {where}: no {id_col} (every verdict names the row it is about)")
    decision = record.get("decision")
    decision = None if _missing(decision) else str(decision).strip().lower()
    if decision not in DECISIONS:
        raise InputError(f"{path}: {where} ({id_col} {record[id_col]}): decision {record.get('decision')!r} is not "
                         f"one of {list(DECISIONS)}")
    new_label = None
    if decision == "relabel":
        value = record.get("new_label")
        if value is None or (not isinstance(value, list) and _missing(value)):
            raise InputError(f"{path}: {where} ({id_col} {record[id_col]}): a relabel needs new_label")
        new_label = _new_label(value, kind, classes, f"{where} ({id_col} {record[id_col]})", path)
    text = {k: None if _missing(record.get(k)) else str(record[k]) for k in ("reviewer", "note")}
    return Verdict(id=record[id_col], decision=decision, new_label=new_label, reviewer=text["reviewer"],
                   note=text["note"], reviewed_at=_time(record.get("reviewed_at"), where, path), where=where)


def _records(path: str, fmt: str) -> list[tuple[str, dict[str, Any]]]:
    try:
        with open(path, newline="") as f:
            if fmt == "csv":
                return [(f"row {i}", dict(r)) for i, r in enumerate(csv.DictReader(f), start=1)]
            out = []
            for i, line in enumerate(f, start=1):
                if line.strip():
                    record = json.loads(line)
                    if not isinstance(record, dict):
                        raise InputError(f"{path}: line {i}: expected a JSON object")
                    out.append((f"line {i}", record))
            return out
    except OSError as e:
        raise InputError(f"cannot read verdicts file {path}: {e.strerror}") from None
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: not JSON lines ({e.msg} at line {e.lineno})") from None


def _choice_verdict(choices: list, given: Any, tags: bool, where: str) -> tuple[str, Any]:
    """(decision, new_label) of one annotation's choices: ``remove`` alone removes; the given label (or tag
    set) keeps; anything else relabels to it. A single-label run takes exactly one choice."""
    if not tags and len(choices) != 1:
        raise InputError(f"{where}: expected one choice in '{FROM_NAME}', got {choices}")
    if REMOVE_CHOICE in choices and len(choices) > 1:
        raise InputError(f"{where}: '{REMOVE_CHOICE}' chosen with tags {choices}; choose '{REMOVE_CHOICE}' alone "
                         "to remove the row")
    if choices == [REMOVE_CHOICE]:
        return "remove", None
    if not tags:
        return ("keep", None) if str(choices[0]) == str(given) else ("relabel", choices[0])
    if sorted(map(str, choices)) == sorted(map(str, given or [])):
        return "keep", None
    return "relabel", list(choices)


def _label_studio_records(path: str, id_col: str, *, tags: bool = False) -> list[tuple[str, dict[str, Any]]]:
    """Label Studio's JSON export: one record per (task, annotation), skipping cancelled annotations.

    ``tags``: the chosen set is the row's tags (``remove`` alone removes it; the given set is ``keep``).
    """
    try:
        with open(path) as f:
            tasks = json.load(f)
    except OSError as e:
        raise InputError(f"cannot read verdicts file {path}: {e.strerror}") from None
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: not a Label Studio JSON export ({e.msg} at line {e.lineno})") from None
    if not isinstance(tasks, list):
        raise InputError(f"{path}: a Label Studio JSON export is a list of tasks")
    out = []
    for task in tasks:
        data = task.get("data") or {}
        where = f"task {task.get('id', '?')}"
        if id_col not in data:
            raise InputError(f"{path}: {where}: its data has no {id_col!r}; import tasks written by "
                             "'sparknoise review export'")
        for ann in task.get("annotations") or []:
            if ann.get("was_cancelled"):
                continue
            choices = [c for r in ann.get("result") or [] if r.get("from_name") == FROM_NAME
                       for c in (r.get("value") or {}).get("choices") or []]
            decision, new_label = _choice_verdict(choices, data.get("given_label"), tags, f"{path}: {where}")
            who = ann.get("completed_by")  # a user id in Label Studio's JSON export, a dict in older ones
            if isinstance(who, dict):
                who = who.get("email") or who.get("username") or who.get("id")
            elif who is not None:
                who = f"label-studio user {who}"
            out.append((where, {id_col: data[id_col], "decision": decision, "new_label": new_label,
                                "reviewer": None if who is None else str(who),
                                "note": None, "reviewed_at": ann.get("updated_at") or ann.get("created_at")}))
    return out


def read_verdicts(path: str, fmt: str, *, id_col: str, classes: Sequence[Any], kind: str = "class") -> list[Verdict]:
    """Parse and check a verdicts file; two different decisions for one id at one time is an error.

    ``kind`` (``LABEL_KINDS``) says what a new_label is: a class, a tag list or a number.
    """
    if fmt == "labelstudio":
        records = _label_studio_records(path, id_col, tags=kind == "tags")
    else:
        records = _records(path, fmt)
        if records and id_col not in records[0][1] or records and "decision" not in records[0][1]:
            have = sorted(records[0][1])
            raise InputError(f"{path}: needs the columns {id_col!r} and 'decision' (plus new_label, reviewer, note, "
                             f"reviewed_at); it has {have}")
    parsed = [_verdict(r, where, path, id_col, classes, kind) for where, r in records]
    verdicts = [v for v in parsed if v is not None]
    seen: dict[tuple[str, Any], Verdict] = {}
    for v in verdicts:
        key = (str(v.id), v.reviewed_at)
        other = seen.get(key)
        if other is not None and (other.decision, str(other.new_label)) != (v.decision, str(v.new_label)):
            raise InputError(f"{path}: {id_col} {v.id} has two different verdicts at the same reviewed_at "
                             f"({other.where}: {other.decision}, {v.where}: {v.decision}); keep one")
        seen[key] = v
    return verdicts
