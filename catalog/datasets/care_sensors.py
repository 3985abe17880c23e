from datetime import timedelta

from catalog.contract import Column, Contract
from catalog.places import SEOUL_DISTRICTS

CONTRACT = Contract(
    id="care_sensors",
    title_ko="독거노인 돌봄 IoT 센서",
    title_en="Home-care IoT sensors of older people living alone",
    description="What the in-home sensors of older people living alone report every 10 minutes, as in "
    "Gyeonggi's 360° AI+ care programme: motion, door openings, power use, indoor climate, and the hub's alert "
    "status (e.g. no motion for hours). Safe-zone data: the household and the sensor hub are pseudonymised "
    "with a keyed HMAC before anything is written; no location finer than the district is kept. District, "
    "quarter hour and the resident's 5-year age band are the quasi-identifiers.",
    entity_type="CareSensorObserved",
    tier="safezone",
    # kept a year for analysis projects, then deleted; quarantined rows a month (only to fix and replay)
    retention=(("clean", timedelta(days=365)), ("quarantine", timedelta(days=30))),
    columns=(
        Column(
            "hub_id",
            "entity_id",
            ("id",),
            "Sensor hub of the household (HMAC-SHA256 pseudonym of its NGSI-LD URN)",
            required=True,
            personal="hmac",
        ),
        Column(
            "household_id",
            "string",
            ("householdId",),
            "Care recipient's one-person household (HMAC-SHA256 pseudonym)",
            required=True,
            personal="hmac",
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
            "resident_age",
            "int",
            ("residentAge",),
            "Care recipient's age in years, from the programme's register (5-year bands outside the zone)",
            minimum=0,
            maximum=120,
            generalise="age_5y",
        ),
        Column(
            "observed_at",
            "timestamp",
            ("dateObserved",),
            "End of the 10-minute interval, UTC",
            required=True,
            generalise="bucket_15min",
        ),
        Column(
            "motion_events",
            "int",
            ("motionCount",),
            "Motion (PIR) detections in the interval",
            minimum=0,
            maximum=600,
            required=True,
        ),
        Column(
            "door_openings", "int", ("doorOpenCount",), "Entrance-door openings in the interval", minimum=0, maximum=100
        ),
        Column(
            "door_state",
            "string",
            ("doorState",),
            "Entrance door at the end of the interval",
            allowed=("open", "closed"),
        ),
        Column(
            "minutes_since_motion",
            "int",
            ("minutesSinceMotion",),
            "Minutes since the last motion anywhere in the home",
            minimum=0,
            maximum=100_000,
        ),
        Column(
            "power_w",
            "float",
            ("powerConsumption",),
            "Mean power drawn by the home",
            unit="WTT",
            minimum=0,
            maximum=20_000,
        ),
        Column("temperature", "float", (), "Indoor temperature", unit="CEL", minimum=-10, maximum=50),
        Column(
            "relative_humidity", "float", ("relativeHumidity",), "Indoor relative humidity, 0–1", minimum=0, maximum=1
        ),
        Column("battery_level", "float", ("batteryLevel",), "Lowest sensor battery level, 0–1", minimum=0, maximum=1),
        Column(
            "alert",
            "string",
            ("alertStatus",),
            "Hub's assessment: normal, or why a carer should call",
            required=True,
            allowed=("normal", "inactivity", "powerAnomaly", "doorLeftOpen", "emergencyButton"),
        ),
    ),
    key_columns=("hub_id",),
    person_column="household_id",  # one-person households: the household is the care recipient
    event_time="observed_at",
    licence="Safe zone only: no redistribution; aggregate results after review",
    cadence=timedelta(minutes=10),
    horizon=timedelta(days=7),
    keywords=("care", "elderly", "IoT", "돌봄", "독거노인", "안심"),
)
