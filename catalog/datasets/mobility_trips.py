from datetime import timedelta

from catalog.contract import Column, Contract, Generalisation

PLACE: Generalisation = "district"

CONTRACT = Contract(
    id="mobility_trips",
    title_ko="공유 모빌리티 이동 기록",
    title_en="Shared mobility trips",
    description="Trips of shared e-scooters, public bikes and demand-responsive transit (DRT): who rode, "
    "from where to where and when. Safe-zone data: the rider id is pseudonymised with a keyed HMAC before "
    "anything is written, and only aggregate answers ever leave the zone.",
    entity_type="MobilityTrip",
    tier="safezone",
    # kept a year for analysis projects, then deleted; quarantined rows a month (only to fix and replay)
    retention=(("clean", timedelta(days=365)), ("quarantine", timedelta(days=30))),
    columns=(
        Column("trip_id", "entity_id", ("id",), "NGSI-LD URN of the trip", required=True),
        Column(
            "rider_id",
            "string",
            ("riderId",),
            "Rider (HMAC-SHA256 pseudonym)",
            required=True,
            personal="hmac",
        ),
        Column(
            "mode",
            "string",
            ("vehicleType",),
            "Vehicle type",
            required=True,
            allowed=("e_scooter", "bike", "drt"),
            quasi_identifier=True,
        ),
        Column("started_at", "timestamp", ("startTime",), "Trip start, UTC", required=True, generalise="bucket_15min"),
        Column("ended_at", "timestamp", ("endTime",), "Trip end, UTC", required=True, generalise="bucket_15min"),
        Column(
            "start_lon",
            "lon",
            ("startLocation",),
            "Start longitude",
            minimum=-180,
            maximum=180,
            required=True,
            generalise=PLACE,
        ),
        Column(
            "start_lat",
            "lat",
            ("startLocation",),
            "Start latitude",
            minimum=-90,
            maximum=90,
            required=True,
            generalise=PLACE,
        ),
        Column(
            "end_lon",
            "lon",
            ("endLocation",),
            "End longitude",
            minimum=-180,
            maximum=180,
            required=True,
            generalise=PLACE,
        ),
        Column(
            "end_lat", "lat", ("endLocation",), "End latitude", minimum=-90, maximum=90, required=True, generalise=PLACE
        ),
        Column("distance_m", "float", ("distance",), "Distance travelled", unit="MTR", minimum=0, maximum=100_000),
        Column("fare_krw", "int", ("fare",), "Fare paid", unit="KRW", minimum=0, maximum=100_000),
    ),
    key_columns=("trip_id",),
    person_column="rider_id",
    event_time="started_at",
    licence="Safe zone only: no redistribution; aggregate results after review",
    cadence=timedelta(minutes=15),
    horizon=timedelta(days=30),
    keywords=("mobility", "scooter", "bike", "drt", "모빌리티"),
)
