"""Disclosure control applied to every answer before anyone sees it (parameters in settings).

* **Small cells** (``persons_below_min``): a cell of fewer than ``CITYHUB_MIN_PERSONS`` distinct persons
  (within one key version, as :mod:`transforms.kanon` counts them) is suppressed — all its values.
* **Dominance** (``dominance``): a cell with a sum or a mean whose largest contributor (one person's clamped
  total) holds more than ``CITYHUB_SAFEZONE_DOMINANCE_ONE`` (50 %) of it, or whose two largest hold more than
  ``CITYHUB_SAFEZONE_DOMINANCE_TWO`` (67 %), is suppressed: the others could estimate the largest's value.
* **Complementary** (``complementary``): an analyst can always ask the margins (the same question with one
  dimension fewer), and a margin minus the published cells of its line is the sum of the line's suppressed
  cells. A line (cells equal in every dimension but one) is safe when it has no suppressed cell, or at least two
  of which one holds ``MIN_PERSONS`` persons itself (so the residual spans enough persons and is no one cell's
  value). Otherwise its published cell with the fewest rows is suppressed too; repeated over every dimension
  until nothing changes. (As in ``transforms/suppress.py``: a complement is a published cell, so it holds
  enough persons by itself.)
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC

import pyarrow as pa

from catalog.releases import COMPLEMENTARY, PERSONS_BELOW_MIN
from infra.settings import Settings
from serving.safezone.compile import AggRequest, finite

DOMINANCE = "dominance"  # one or two contributors make most of a sum


@dataclass
class Answer:
    columns: list[str]
    rows: list[list]
    suppressed: list[dict]
    cells: list[dict]  # per row: {"dims": {...}, "persons": n, "suppressed": bool} — for the guard, never sent


def control(raw: pa.Table, request: AggRequest, settings: Settings) -> Answer:
    k = settings.min_persons
    cells = raw.to_pylist()
    reasons: dict[int, str] = {}
    for i, cell in enumerate(cells):
        if (cell["_persons"] or 0) < k:
            reasons[i] = PERSONS_BELOW_MIN
            continue
        for m in request.measures:
            if m.column is None:
                continue
            total, top = cell[f"_abs_{m.column}"] or 0.0, sorted(cell[f"_top_{m.column}"] or [], reverse=True)
            first, second = (top + [0.0, 0.0])[:2]
            if total > 0 and (
                first > settings.safezone_dominance_one * total
                or first + second > settings.safezone_dominance_two * total
            ):
                reasons[i] = DOMINANCE
                break
    _complement(cells, request, reasons, k)
    rows, suppressed, guard = [], [], []
    for i, cell in enumerate(cells):
        dims = {g: _jsonable(cell[g]) for g in request.group_by}
        hidden = i in reasons
        values = [None if hidden else _value(cell, m) for m in request.measures]
        rows.append([*dims.values(), *values])
        if hidden:
            suppressed.append({"row": i, "cell": dims, "reason": reasons[i]})
        guard.append({"dims": dims, "persons": cell["_persons"] or 0, "suppressed": hidden})
    return Answer(request.columns, rows, suppressed, guard)


def _complement(cells: list[dict], request: AggRequest, reasons: dict[int, str], k: int) -> None:
    dims = list(request.group_by)
    for _ in range(50):
        changed = False
        for d in dims:
            lines: dict[tuple, list[int]] = defaultdict(list)
            for i, cell in enumerate(cells):
                lines[tuple(repr(cell[o]) for o in dims if o != d)].append(i)
            for members in lines.values():
                hidden = [i for i in members if i in reasons]
                if not hidden:
                    continue
                if len(hidden) >= 2 and any((cells[i]["_persons"] or 0) >= k for i in hidden):
                    continue
                shown = [i for i in members if i not in reasons]
                if not shown:
                    continue
                pick = min(shown, key=lambda i: (cells[i]["_rows"] or 0, i))
                reasons[pick] = COMPLEMENTARY
                changed = True
        if not changed:
            return


def _value(cell: dict, measure) -> float | int | None:
    if measure.fn == "count":
        return int(cell["_rows"] or 0)
    if measure.fn == "persons":
        return int(cell["_persons"] or 0)
    total, n = cell[f"_sum_{measure.column}"], cell[f"_n_{measure.column}"]
    if measure.fn == "sum":
        return None if total is None else finite(round(float(total), 3))
    return None if not n or total is None else finite(round(float(total) / int(n), 3))


def _jsonable(value):
    if hasattr(value, "isoformat"):
        return (
            value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            if getattr(value, "tzinfo", None)
            else value.isoformat()
        )
    return value


def export_view(
    columns: list[str], rows: list[list], request: dict, settings: Settings
) -> tuple[list[list], list[int]]:
    """The stricter rules of an export (반출): a row with a count (rows or persons) of ``redact_max`` or fewer is
    redacted whole; the other counts are rounded to a multiple of ``round``. Returns rows and redacted rows."""
    counts = [i for i, c in enumerate(columns) if c in ("count", "persons")]
    dims = len(request["group_by"])
    base = settings.safezone_export_round
    out, redacted = [], []
    for r, row in enumerate(rows):
        values = row[dims:]
        if any(v is None for v in values) or any(
            row[i] is not None and row[i] <= settings.safezone_export_redact_max for i in counts
        ):
            out.append([*row[:dims], *([None] * len(values))])
            redacted.append(r)
            continue
        out.append([int(base * round(v / base)) if i in counts else v for i, v in enumerate(row)])
    return out, redacted
