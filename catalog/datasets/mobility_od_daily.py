from catalog.datasets.mobility_od_hourly import CONTRACT as HOURLY
from catalog.releases import SUPPRESSION_NOTE, daily_release

CONTRACT = daily_release(
    HOURLY,
    id="mobility_od_daily",
    title_ko="공유 모빌리티 자치구 간 이동량 (일별)",
    title_en="Shared mobility trips between districts, daily",
    description="Trips of shared e-scooters, public bikes and DRT per day (Asia/Seoul) from one Seoul district to "
    "another, derived from the safe-zone dataset mobility_trips; the daily release of mobility_od_hourly (a day's "
    "trips are the sum of its hours')." + SUPPRESSION_NOTE,
    entity_type="MobilityOriginDestinationDaily",
    descriptions={
        "trips": "Trips started on the day (null when suppressed)",
        "riders": "Distinct riders of the day (within one pseudonym key version: a lower bound; null when suppressed)",
    },
)
