from datetime import timedelta

from catalog.contract import Column, Contract
from catalog.places import SEOUL_DISTRICTS
from catalog.releases import DAY, HOUR, SUPPRESSION, SUPPRESSION_NOTE

CONTRACT = Contract(
    id="energy_district_hourly",
    title_ko="자치구별 전력 사용량 (시간별)",
    title_en="Electricity use per district, hourly",
    description="Electricity recorded by smart meters per hour and Seoul district, derived from the safe-zone "
    "dataset energy_usage: the energy of the 15-minute readings that start in the UTC hour, and how many meters "
    "and households they come from." + SUPPRESSION_NOTE,
    entity_type="EnergyUsageDistrictHourly",
    tier="open",
    derived_from="energy_usage",
    columns=(
        HOUR,
        DAY,
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
    key_columns=("hour", "district"),
    event_time="hour",
    licence="KOGL Type 1 (공공누리 제1유형: 출처표시)",
    cadence=timedelta(hours=1),
    keywords=("energy", "electricity", "smart meter", "district", "전력", "에너지", "자치구"),
)
