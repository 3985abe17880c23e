from datetime import timedelta

from catalog.contract import Column, Contract
from catalog.places import SEOUL_DISTRICTS

CONTRACT = Contract(
    id="energy_usage",
    title_ko="건물·가구별 전력 사용량 (스마트 계량기)",
    title_en="Electricity use per building and household (smart meters)",
    description="Energy recorded by AMI smart meters in every 15-minute interval, per household and building. "
    "Safe-zone data: a household's load profile reveals when it is at home, so the meter and the household are "
    "pseudonymised with a keyed HMAC before anything is written; buildings and districts are kept.",
    entity_type="EnergyUsageObserved",
    tier="safezone",
    # kept a year for analysis projects, then deleted; quarantined rows a month (only to fix and replay)
    retention=(("clean", timedelta(days=365)), ("quarantine", timedelta(days=30))),
    columns=(
        Column(
            "meter_id",
            "entity_id",
            ("id",),
            "Smart meter (HMAC-SHA256 pseudonym of its NGSI-LD URN)",
            required=True,
            personal="hmac",
        ),
        Column(
            "household_id",
            "string",
            ("householdId",),
            "Household supplied by the meter (HMAC-SHA256 pseudonym)",
            required=True,
            personal="hmac",
        ),
        # the building is an address: a quasi-identifier with a handful of households behind it
        Column(
            "building_id", "string", ("buildingId",), "Building the meter is in", required=True, quasi_identifier=True
        ),
        Column(
            "building_use",
            "string",
            ("buildingUse",),
            "Kind of building",
            allowed=("apartment", "rowHouse", "multiFamily", "detached", "officetel"),
            quasi_identifier=True,
        ),
        Column(
            "district",
            "string",
            (),
            "Autonomous district (자치구)",
            required=True,
            allowed=SEOUL_DISTRICTS,
            quasi_identifier=True,
        ),
        Column(
            "observed_at",
            "timestamp",
            ("dateObservedFrom", "dateObserved"),
            "Start of the 15-minute interval, UTC",
            required=True,
            generalise="bucket_15min",
        ),
        Column(
            "energy_kwh",
            "float",
            ("activeEnergyImport",),
            "Active energy imported in the interval",
            unit="KWH",
            minimum=0,
            maximum=25,
            required=True,
        ),
        Column(
            "peak_kw",
            "float",
            ("peakPower",),
            "Highest demand within the interval",
            unit="KWT",
            minimum=0,
            maximum=100,
        ),
        Column(
            "meter_reading_kwh",
            "float",
            ("totalActiveEnergyImport",),
            "Cumulative register at the end of the interval",
            unit="KWH",
            minimum=0,
            maximum=10_000_000,
        ),
    ),
    key_columns=("meter_id",),
    person_column="household_id",
    event_time="observed_at",
    licence="Safe zone only: no redistribution; aggregate results after review",
    cadence=timedelta(minutes=15),
    horizon=timedelta(days=35),
    keywords=("energy", "electricity", "smart meter", "AMI", "전력", "에너지", "스마트미터"),
)
