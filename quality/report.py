"""Quality results per lake partition (event date): rows checked, clean, quarantined, and how often each
expectation failed — counts and names only, never values, so the same report is public for safe-zone data.

Each landed chunk records its share in its ledger entry (:func:`chunk_report`); the API sums the entries of a
dataset per date (:func:`partition_reports`), so a replayed chunk replaces its own share and nothing else.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

import pyarrow as pa
import pyarrow.compute as pc


def _count(dates: pa.Array | pa.ChunkedArray) -> dict[str, int]:
    if len(dates) == 0:
        return {}
    counts = pc.value_counts(dates)
    return {v["values"].as_py(): v["counts"].as_py() for v in counts}


def chunk_report(clean_dates: pa.ChunkedArray, quarantine_dates: pa.ChunkedArray, reasons: pa.ChunkedArray) -> dict:
    """{date: {"rows", "clean", "quarantined", "failures": {expectation: n}, "problems": {decode problem: n}}}
    for one chunk. ``reasons`` are the quarantined rows' ``_reason`` values (``;``-joined expectation names, the
    decode check followed by ``=<problem>;<problem>…``)."""
    report: dict[str, dict] = defaultdict(
        lambda: {"rows": 0, "clean": 0, "quarantined": 0, "failures": {}, "problems": {}}
    )
    for date, n in _count(clean_dates).items():
        report[date]["clean"] += n
        report[date]["rows"] += n
    for date, n in _count(quarantine_dates).items():
        report[date]["quarantined"] += n
        report[date]["rows"] += n
    if len(reasons):
        parts = pc.split_pattern(reasons, ";")
        flat = pc.list_flatten(parts)
        dates = pa.chunked_array(quarantine_dates).combine_chunks().take(pc.list_parent_indices(parts))
        is_expectation = pc.starts_with(flat, "Expect")
        names = pc.replace_substring_regex(flat, "=.*$", "")
        # the decode check carries its first problem after "="; the others follow as parts of their own
        problems = pc.if_else(is_expectation, pc.struct_field(pc.extract_regex(flat, "=(?P<p>.*)$"), "p"), flat)
        table = pa.table({"date": dates, "name": names, "expectation": is_expectation, "problem": problems})
        for key, column, where in (("failures", "name", is_expectation), ("problems", "problem", None)):
            subset = table.filter(where) if where is not None else table.filter(pc.is_valid(table["problem"]))
            for row in subset.group_by(["date", column]).aggregate([([], "count_all")]).to_pylist():
                report[row["date"]][key][row[column]] = row["count_all"]
    return {date: dict(values) for date, values in sorted(report.items())}


def partition_reports(chunk_reports: Iterable[dict]) -> list[dict]:
    """Sum chunk reports per date, newest date first."""
    total: dict[str, dict] = {}
    for chunk in chunk_reports:
        for date, part in chunk.items():
            into = total.setdefault(
                date, {"date": date, "rows": 0, "clean": 0, "quarantined": 0, "failures": {}, "problems": {}}
            )
            for key in ("rows", "clean", "quarantined"):
                into[key] += part.get(key, 0)
            for key in ("failures", "problems"):
                for name, n in part.get(key, {}).items():
                    into[key][name] = into[key].get(name, 0) + n
    return [total[d] for d in sorted(total, reverse=True)]
