"""Time-zone normalisation of landed times: the city's wall clock, for buckets such as "the day in Seoul".

Units and zones of *incoming* values are normalised once, on decoding (``ingest/decode.py`` converts NGSI
``unitCode``s through ``catalog/units.py`` and reads zone-less times in the source's zone; the lake holds UTC).
What is left for already-landed tables is the reverse direction — UTC instants to a zone's local wall clock —
which the daily rollups need (:mod:`transforms.rollup`).

The zone's UTC offset is looked up once per distinct quarter hour, not once per row: since 1972 every zone's
offset is a multiple of 15 minutes and changes at a whole local hour, so offsets are constant within a UTC
quarter hour. When the table's span has a single offset (Seoul has had +09:00 since 1988) it is one addition.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from infra.errors import BadRequest

US_PER_QUARTER = 900_000_000
US_PER_DAY = 86_400_000_000
_MAX_QUARTERS = 100_000  # ~3 years: offsets for every quarter hour of the span; longer spans look up distinct ones


def epoch_us(times: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """UTC microseconds since the epoch of zone-aware timestamps (nulls must be filtered out before)."""
    if not pa.types.is_timestamp(times.type) or times.type.tz is None:
        raise BadRequest(f"expected zone-aware timestamps, got {times.type}", hint="landed event times are UTC")
    if times.null_count:
        raise BadRequest("timestamps with nulls", hint="filter rows without an event time first")
    values = pc.cast(times, pa.timestamp("us", tz="UTC")).cast(pa.int64())
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    return values.to_numpy(zero_copy_only=False)


def local_wall_clock_us(utc_us: np.ndarray, tz: str) -> np.ndarray:
    """Local wall-clock microseconds (as if the local time were UTC) of UTC microseconds in zone ``tz``."""
    if len(utc_us) == 0:
        return utc_us.copy()
    zone = ZoneInfo(tz)
    # the span's quarters from its ends (floor division is monotone): no per-row division when one offset holds
    first, last = int(utc_us.min()) // US_PER_QUARTER, int(utc_us.max()) // US_PER_QUARTER
    if last - first < _MAX_QUARTERS:
        offsets = _offsets_us(np.arange(first, last + 1), zone)
        if (offsets == offsets[0]).all():
            return utc_us + offsets[0]  # one offset over the whole span: a single addition
        return utc_us + offsets[utc_us // US_PER_QUARTER - first]
    quarters = utc_us // US_PER_QUARTER
    distinct, inverse = np.unique(quarters, return_inverse=True)
    return utc_us + _offsets_us(distinct, zone)[inverse]


def local_days(times: pa.Array | pa.ChunkedArray, tz: str) -> np.ndarray:
    """The local calendar day of each instant in ``tz``, as days since 1970-01-01 (Arrow's ``date32``)."""
    return local_wall_clock_us(epoch_us(times), tz) // US_PER_DAY


def _offsets_us(quarters: np.ndarray, zone: ZoneInfo) -> np.ndarray:
    """UTC offset (µs) at the start of each quarter hour: one zoneinfo call per quarter, not per row."""
    seconds = quarters * (US_PER_QUARTER // 1_000_000)
    return (
        np.array(
            [int(datetime.fromtimestamp(int(s), UTC).astimezone(zone).utcoffset().total_seconds()) for s in seconds],
            dtype=np.int64,
        )
        * 1_000_000
    )
