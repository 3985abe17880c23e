"""Columns every open release derived from safe-zone data shares: its time columns and its suppression flags.

A release is published per Seoul day (``day``) and, for the hourly release, per UTC hour (``hour``); each cell
(a time bucket and a group, e.g. an origin–destination district pair) is one row. A cell counted in fewer than
``CITYHUB_MIN_PERSONS`` distinct persons — or suppressed to protect another one (complementary suppression
across the hourly and daily releases) — keeps its row with every value null, ``suppressed`` true and the
reason in ``suppression``, so the suppressed cells can be counted (``transforms/suppress.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import timedelta

from catalog.contract import Column, Contract

PERSONS_BELOW_MIN = "persons_below_min"  # counted in fewer distinct persons than CITYHUB_MIN_PERSONS
COMPLEMENTARY = "complementary"  # published it would let a suppressed cell be recovered by subtraction
REASONS = (PERSONS_BELOW_MIN, COMPLEMENTARY)

HOUR = Column("hour", "timestamp", description="Start of the hour, UTC", required=True)
DAY = Column("day", "date", description="The day in Asia/Seoul the hour belongs to", required=True)
SUPPRESSION = (
    Column("suppressed", "bool", description="True when the cell's values are withheld (nulls)", required=True),
    Column(
        "suppression",
        "string",
        description="Why the cell is withheld: persons_below_min (fewer distinct persons than CITYHUB_MIN_PERSONS) "
        "or complementary (withheld so that no suppressed cell can be recovered from the other release); "
        "null when published",
        allowed=REASONS,
    ),
)
SUPPRESSION_NOTE = (
    " Cells counted in fewer than CITYHUB_MIN_PERSONS (10) distinct persons are suppressed (values null, "
    "suppressed=true), and further cells are suppressed so that no suppressed cell can be recovered by "
    "subtracting the hourly release from the daily one or the other way round."
)


def daily_release(
    hourly: Contract,
    *,
    id: str,
    title_ko: str,
    title_en: str,
    description: str,
    entity_type: str,
    descriptions: Mapping[str, str] | None = None,
) -> Contract:
    """The daily release of the ``hourly`` one: the same cells per Seoul ``day`` instead of per UTC ``hour``, the
    same measures and suppression flags (``descriptions`` rewords those whose text names the hour)."""
    reworded = descriptions or {}
    unknown = set(reworded) - {c.name for c in hourly.columns}
    if unknown:
        raise ValueError(f"{id}: no column {sorted(unknown)} in {hourly.id} to describe")
    columns = [Column("day", "date", description="The day in Asia/Seoul", required=True)] + [
        replace(c, description=reworded.get(c.name, c.description))
        for c in hourly.columns
        if c.name not in ("hour", "day")
    ]
    return replace(
        hourly,
        id=id,
        title_ko=title_ko,
        title_en=title_en,
        description=description,
        entity_type=entity_type,
        columns=tuple(columns),
        key_columns=tuple("day" if k == "hour" else k for k in hourly.key_columns),
        event_time="day",
        cadence=timedelta(days=1),
    )
