"""Open releases derived from safe-zone datasets: hourly and daily cells per district (pair), suppressed.

Pure Table → Table functions from a safe-zone dataset's clean rows (precise coordinates and times, pseudonyms)
to the rows of its derived open datasets (``catalog/datasets/*``, ``derived_from=``):

* ``mobility_trips`` → ``mobility_od_hourly`` / ``mobility_od_daily``: trips per (origin district, destination
  district), the districts of the start and end points' 250 m cells (:func:`transforms.geo.district`), the hour
  of the start; persons are riders. Trips starting or ending outside Seoul have no district and are left out.
* ``energy_usage`` → ``energy_district_hourly`` / ``energy_district_daily``: readings, meters, households and
  kWh per district, the hour of each 15-minute interval's start; persons are households.

A cell's hour is the UTC hour; its day is the day in Asia/Seoul of the hour's start (:mod:`transforms.normalise`),
so every hour lies in exactly one day and a day's additive values are the sums of its hours' — which is what
makes the two releases comparable, and what :mod:`transforms.suppress` protects against.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from catalog.contract import KEY_VERSION, Contract
from transforms.geo import district
from transforms.normalise import US_PER_DAY, epoch_us, local_wall_clock_us
from transforms.rollup import CITY_TZ, US_PER_HOUR
from transforms.suppress import DAY, HOUR, ReleaseSpec, releases


@dataclass(frozen=True)
class Derivation:
    """How one safe-zone dataset becomes its two open releases."""

    source: str  # the safe-zone dataset
    hourly: str  # derived dataset ids
    daily: str
    columns: tuple[str, ...]  # what is read from the source's clean zone
    spec: ReleaseSpec
    prepare: Callable[[pa.Table], pa.Table]  # clean rows → one generalised row per event


def hour_and_day(times: pa.Array | pa.ChunkedArray, tz: str = CITY_TZ) -> tuple[pa.Array, pa.Array]:
    """Each instant's UTC hour (hours since the epoch, int64) and the day in ``tz`` of that hour's start."""
    hours = epoch_us(times) // US_PER_HOUR
    days = local_wall_clock_us(hours * US_PER_HOUR, tz) // US_PER_DAY
    return pa.array(hours, pa.int64()), pa.array(days.astype(np.int32), pa.date32())


def _with_time(table: pa.Table, time: str) -> pa.Table:
    table = table.filter(pc.is_valid(table.column(time)))
    hour, day = hour_and_day(table.column(time))
    return table.append_column(HOUR, hour).append_column(DAY, day)


def _version(table: pa.Table) -> list[str]:
    return [KEY_VERSION] if KEY_VERSION in table.column_names else []


def mobility_rows(clean: pa.Table) -> pa.Table:
    """One row per trip with both ends in Seoul: hour, day, origin and destination district, rider."""
    table = _with_time(clean, "started_at")
    table = table.append_column("origin_district", district(table["start_lon"], table["start_lat"]).cast(pa.string()))
    table = table.append_column("destination_district", district(table["end_lon"], table["end_lat"]).cast(pa.string()))
    inside = pc.and_(pc.is_valid(table["origin_district"]), pc.is_valid(table["destination_district"]))
    table = table.filter(inside)
    return table.select([HOUR, DAY, "origin_district", "destination_district", "rider_id", *_version(table)])


def energy_rows(clean: pa.Table) -> pa.Table:
    """One row per 15-minute reading: hour, day, district, household, meter, kWh."""
    table = _with_time(clean, "observed_at")
    table = table.filter(pc.is_valid(table["district"]))
    columns = [HOUR, DAY, "district", "household_id", "meter_id", "energy_kwh", *_version(table)]
    return table.select(columns).set_column(2, "district", table["district"].cast(pa.string()))


DERIVATIONS: dict[str, Derivation] = {
    d.source: d
    for d in (
        Derivation(
            "mobility_trips",
            "mobility_od_hourly",
            "mobility_od_daily",
            ("started_at", "start_lon", "start_lat", "end_lon", "end_lat", "rider_id", KEY_VERSION),
            ReleaseSpec(("origin_district", "destination_district"), "rider_id", "riders", "trips"),
            mobility_rows,
        ),
        Derivation(
            "energy_usage",
            "energy_district_hourly",
            "energy_district_daily",
            ("observed_at", "district", "household_id", "meter_id", "energy_kwh", KEY_VERSION),
            ReleaseSpec(
                ("district",),
                "household_id",
                "households",
                "readings",
                distinct=(("meters", "meter_id"),),
                sums=(("energy_kwh_sum", "energy_kwh"),),
            ),
            energy_rows,
        ),
    )
}


def derive(
    clean: pa.Table, derivation: Derivation, hourly: Contract, daily: Contract, min_persons: int
) -> tuple[pa.Table, pa.Table]:
    """The hourly and daily release of a safe-zone dataset's clean rows, in the derived contracts' schemas."""
    rows = derivation.prepare(clean)
    cells_h, cells_d = releases(rows, derivation.spec, min_persons)
    return _published(cells_h, hourly), _published(cells_d, daily)


def _published(cells: pa.Table, contract: Contract) -> pa.Table:
    """Cells as the derived contract declares them: the hour as a UTC timestamp, means from the sums."""
    if HOUR in cells.column_names:
        hours = pc.multiply(cells[HOUR].cast(pa.int64()), US_PER_HOUR).cast(pa.timestamp("us", tz="UTC"))
        cells = cells.set_column(cells.column_names.index(HOUR), HOUR, hours)
    if "energy_kwh_mean" in contract.schema.names:
        mean = pc.round(pc.divide(cells["energy_kwh_sum"], pc.cast(cells["readings"], pa.float64())), 4)
        cells = cells.append_column("energy_kwh_mean", mean)
    return cells.select(contract.schema.names).cast(contract.schema)
