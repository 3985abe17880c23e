"""A daily release is declared from its hourly one: same cells per Seoul day, same measures and flags."""

from __future__ import annotations

import pytest

from catalog import get_contract
from catalog.releases import daily_release

PAIRS = (("mobility_od_hourly", "mobility_od_daily"), ("energy_district_hourly", "energy_district_daily"))


@pytest.mark.parametrize(("hourly_id", "daily_id"), PAIRS)
def test_a_daily_release_keeps_the_hourly_measures_per_seoul_day(hourly_id, daily_id):
    hourly, daily = get_contract(hourly_id), get_contract(daily_id)
    measures = [c.name for c in hourly.columns if c.name not in ("hour", "day")]
    assert [c.name for c in daily.columns] == ["day", *measures]
    assert daily.event_time == "day" and daily.cadence.days == 1
    assert daily.key_columns == tuple("day" if k == "hour" else k for k in hourly.key_columns)
    assert (daily.tier, daily.derived_from, daily.licence) == (hourly.tier, hourly.derived_from, hourly.licence)
    assert daily.id != hourly.id and daily.entity_type != hourly.entity_type


def test_rewording_a_column_the_hourly_release_lacks_is_refused():
    with pytest.raises(ValueError, match="no column"):
        daily_release(
            get_contract("mobility_od_hourly"),
            id="x",
            title_ko="x",
            title_en="x",
            description="x",
            entity_type="X",
            descriptions={"passengers": "…"},
        )
