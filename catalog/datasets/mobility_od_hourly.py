from datetime import timedelta

from catalog.contract import Column, Contract
from catalog.places import SEOUL_DISTRICTS
from catalog.releases import DAY, HOUR, SUPPRESSION, SUPPRESSION_NOTE

CONTRACT = Contract(
    id="mobility_od_hourly",
    title_ko="공유 모빌리티 자치구 간 이동량 (시간별)",
    title_en="Shared mobility trips between districts, hourly",
    description="Trips of shared e-scooters, public bikes and DRT per hour from one Seoul district to another "
    "(origin–destination counts), derived from the safe-zone dataset mobility_trips: the district of each trip's "
    "start and end point, the UTC hour of its start. Trips starting or ending outside Seoul are not counted."
    + SUPPRESSION_NOTE,
    entity_type="MobilityOriginDestinationHourly",
    tier="open",
    derived_from="mobility_trips",
    columns=(
        HOUR,
        DAY,
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
        Column("trips", "int", description="Trips started in the hour (null when suppressed)", minimum=0),
        Column(
            "riders",
            "int",
            description="Distinct riders (within one pseudonym key version: a lower bound; null when suppressed)",
            minimum=0,
        ),
        *SUPPRESSION,
    ),
    key_columns=("hour", "origin_district", "destination_district"),
    event_time="hour",
    licence="KOGL Type 1 (공공누리 제1유형: 출처표시)",
    cadence=timedelta(hours=1),
    keywords=("mobility", "origin-destination", "scooter", "bike", "drt", "모빌리티", "기종점"),
)
