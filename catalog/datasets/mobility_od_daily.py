from datetime import timedelta

from catalog.contract import Column, Contract
from catalog.places import SEOUL_DISTRICTS
from catalog.releases import SUPPRESSION, SUPPRESSION_NOTE

CONTRACT = Contract(
    id="mobility_od_daily",
    title_ko="공유 모빌리티 자치구 간 이동량 (일별)",
    title_en="Shared mobility trips between districts, daily",
    description="Trips of shared e-scooters, public bikes and DRT per day (Asia/Seoul) from one Seoul district to "
    "another, derived from the safe-zone dataset mobility_trips; the daily release of mobility_od_hourly (a day's "
    "trips are the sum of its hours')." + SUPPRESSION_NOTE,
    entity_type="MobilityOriginDestinationDaily",
    tier="open",
    derived_from="mobility_trips",
    columns=(
        Column("day", "date", description="The day in Asia/Seoul", required=True),
        Column(
            "origin_district",
            "string",
            description="District the trips started in",
            required=True,
            allowed=SEOUL_DISTRICTS,
        ),
        Column(
            "destination_district",
            "string",
            description="District the trips ended in",
            required=True,
            allowed=SEOUL_DISTRICTS,
        ),
        Column("trips", "int", description="Trips started on the day (null when suppressed)", minimum=0),
        Column(
            "riders",
            "int",
            description="Distinct riders of the day (within one pseudonym key version: a lower "
            "bound; null when suppressed)",
            minimum=0,
        ),
        *SUPPRESSION,
    ),
    key_columns=("day", "origin_district", "destination_district"),
    event_time="day",
    licence="KOGL Type 1 (공공누리 제1유형: 출처표시)",
    cadence=timedelta(days=1),
    keywords=("mobility", "origin-destination", "scooter", "bike", "drt", "모빌리티", "기종점"),
)
