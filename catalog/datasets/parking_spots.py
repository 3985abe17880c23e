from datetime import timedelta

from catalog.contract import KAFKA_TIMESTAMP, Column, Contract

CONTRACT = Contract(
    id="parking_spots",
    title_ko="주차면 점유 현황",
    title_en="Parking spot occupancy",
    description="Occupancy of sensor-equipped on-street parking spots (FIWARE ParkingSpot). "
    "When an entity carries no observation time the Kafka record's timestamp is used.",
    entity_type="ParkingSpot",
    tier="open",
    columns=(
        Column("spot_id", "entity_id", ("id",), "NGSI-LD URN of the parking spot", required=True),
        Column(
            "observed_at",
            "timestamp",
            ("status.observedAt", "dateObserved", "dateModified", KAFKA_TIMESTAMP),
            "When the status was observed, UTC",
            required=True,
        ),
        Column("lon", "lon", ("location",), "Longitude", minimum=-180, maximum=180, required=True),
        Column("lat", "lat", ("location",), "Latitude", minimum=-90, maximum=90, required=True),
        Column("name", "string", (), "Spot label"),
        Column(
            "status",
            "string",
            (),
            "Occupancy status",
            required=True,
            allowed=("free", "occupied", "closed", "unknown"),
        ),
        Column("category", "string", (), "First category of the spot (onStreet, offStreet, ...)"),
        Column("parking_site", "string", ("refParkingSite",), "Parking site the spot belongs to"),
    ),
    key_columns=("spot_id",),
    event_time="observed_at",
    licence="CC BY 4.0 (FIWARE examples) / KOGL Type 1 (city feeds)",
    cadence=timedelta(minutes=1),
    keywords=("parking", "주차"),
)
