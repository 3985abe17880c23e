from datetime import timedelta

from catalog.contract import Column, Contract
from catalog.places import SEOUL_DISTRICTS
from catalog.releases import SUPPRESSION, SUPPRESSION_NOTE

CONTRACT = Contract(
    id="energy_district_daily",
    title_ko="자치구별 전력 사용량 (일별)",
    title_en="Electricity use per district, daily",
    description="Electricity recorded by smart meters per day (Asia/Seoul) and Seoul district, derived from the "
    "safe-zone dataset energy_usage; the daily release of energy_district_hourly (a day's readings and energy are "
    "the sums of its hours')." + SUPPRESSION_NOTE,
    entity_type="EnergyUsageDistrictDaily",
    tier="open",
    derived_from="energy_usage",
    columns=(
        Column("day", "date", description="The day in Asia/Seoul", required=True),
        Column(
            "district", "string", description="Autonomous district (자치구)", required=True, allowed=SEOUL_DISTRICTS
        ),
        Column("readings", "int", description="15-minute meter readings (null when suppressed)", minimum=0),
        Column("meters", "int", description="Distinct smart meters (null when suppressed)", minimum=0),
        Column(
            "households",
            "int",
            description="Distinct households (within one pseudonym key version: a lower bound; null when suppressed)",
            minimum=0,
        ),
        Column(
            "energy_kwh_sum",
            "float",
            description="Energy of the readings, rounded to Wh (null when suppressed)",
            unit="KWH",
            minimum=0,
        ),
        Column(
            "energy_kwh_mean",
            "float",
            description="Mean energy of one 15-minute reading (null when suppressed)",
            unit="KWH",
            minimum=0,
        ),
        *SUPPRESSION,
    ),
    key_columns=("day", "district"),
    event_time="day",
    licence="KOGL Type 1 (공공누리 제1유형: 출처표시)",
    cadence=timedelta(days=1),
    keywords=("energy", "electricity", "smart meter", "district", "전력", "에너지", "자치구"),
)
