from datetime import timedelta

from catalog.contract import Column, Contract

LOCATION_CATEGORIES = (
    "bridge",
    "centralIsland",
    "facade",
    "garden",
    "park",
    "parking",
    "pedestrianPath",
    "playground",
    "road",
    "sidewalk",
    "tunnel",
)

CONTRACT = Contract(
    id="streetlights",
    title_ko="스마트 가로등 상태",
    title_en="Smart streetlight status",
    description="State and electrical readings of remotely managed streetlights (FIWARE Streetlight): "
    "whether the lamp is on, its dimming level, power drawn and faults such as a defective lamp.",
    entity_type="Streetlight",
    tier="open",
    columns=(
        Column("light_id", "entity_id", ("id",), "NGSI-LD URN of the streetlight", required=True),
        Column(
            "observed_at",
            "timestamp",
            ("observationDateTime", "dateObserved", "dateModified"),
            "When the streetlight last reported, UTC",
            required=True,
        ),
        Column("lon", "lon", ("location",), "Longitude (WGS84)", minimum=-180, maximum=180, required=True),
        Column("lat", "lat", ("location",), "Latitude (WGS84)", minimum=-90, maximum=90, required=True),
        Column(
            "status",
            "string",
            (),
            "Overall condition of the streetlight",
            required=True,
            allowed=("ok", "brokenLantern", "columnIssue", "defectiveLamp"),
        ),
        Column(
            "power_state",
            "string",
            ("powerState",),
            "Power state of the lamp",
            allowed=("on", "off", "low", "bootingUp"),
        ),
        Column(
            "illuminance_level",
            "float",
            ("illuminanceLevel",),
            "Dimming level set, 0 (dark) – 1 (full)",
            minimum=0,
            maximum=1,
        ),
        Column("power_consumption", "float", ("powerConsumption",), "Power drawn", unit="WTT", minimum=0, maximum=2000),
        Column(
            "power_rating", "float", ("powerRating",), "Rated power of the lamp", unit="WTT", minimum=0, maximum=2000
        ),
        Column("power_factor", "float", ("powerFactor",), "Power factor", minimum=0, maximum=1),
        Column("voltage", "float", (), "Supply voltage", unit="VLT", minimum=0, maximum=500),
        Column(
            "lifetime_power_consumption",
            "float",
            ("lifetimePowerConsumption",),
            "Energy used over the lamp's life",
            unit="KWH",
            minimum=0,
            maximum=1_000_000,
        ),
        Column(
            "lifetime_motion_detected",
            "int",
            ("lifetimeMotionDetected",),
            "Motion detections counted over the lamp's life",
            minimum=0,
        ),
        Column("lantern_height", "float", ("lanternHeight",), "Lantern height", unit="MTR", minimum=0, maximum=50),
        Column(
            "location_category",
            "string",
            ("locationCategory",),
            "Where the streetlight stands",
            allowed=LOCATION_CATEGORIES,
        ),
        Column(
            "controlling_method",
            "string",
            ("controllingMethod",),
            "Switched individually or with its group",
            allowed=("group", "individual"),
        ),
        Column("area_served", "string", ("areaServed",), "Area or road the light serves"),
        Column("district", "string", ("municipalityInfo.district",), "District"),
        Column("circuit", "string", (), "Electrical circuit feeding the light"),
        Column("streetlight_group", "string", ("refStreetlightGroup",), "Group the streetlight belongs to"),
        Column("date_last_lamp_change", "timestamp", ("dateLastLampChange",), "Last lamp replacement, UTC"),
    ),
    key_columns=("light_id",),
    event_time="observed_at",
    licence="CC BY 4.0 (FIWARE examples) / KOGL Type 1 (city feeds)",
    cadence=timedelta(minutes=15),
    keywords=("streetlight", "lighting", "energy", "가로등", "스마트가로등"),
)
