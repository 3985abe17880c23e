from datetime import timedelta

from catalog.contract import Column, Contract

WASTE_KINDS = (
    "organic",
    "inorganic",
    "glass",
    "oil",
    "plastic",
    "metal",
    "paper",
    "batteries",
    "electronics",
    "hazardous",
    "other",
)

CONTRACT = Contract(
    id="waste_containers",
    title_ko="스마트 쓰레기통 적재 현황",
    title_en="Waste container fill levels",
    description="Fill level, weight, temperature and condition of sensor-equipped waste and recycling "
    "containers (FIWARE WasteContainer), for planning collection rounds.",
    entity_type="WasteContainer",
    tier="open",
    columns=(
        Column("container_id", "entity_id", ("id",), "NGSI-LD URN of the container", required=True),
        Column(
            "observed_at",
            "timestamp",
            ("fillingLevel.observedAt", "binLoggedTime", "dateObserved", "dateModified"),
            "When the fill level was logged, UTC",
            required=True,
        ),
        Column("lon", "lon", ("location",), "Longitude (WGS84)", minimum=-180, maximum=180, required=True),
        Column("lat", "lat", ("location",), "Latitude (WGS84)", minimum=-90, maximum=90, required=True),
        Column("filling_level", "float", ("fillingLevel",), "Fill level, 0 (empty) – 1 (full)", minimum=0, maximum=1),
        Column(
            "fullness_threshold",
            "float",
            ("binFullnessThreshold",),
            "Fill level at which a full-bin alert is raised",
            unit="P1",
            minimum=0,
            maximum=100,
        ),
        Column("cargo_weight", "float", ("cargoWeight",), "Weight of the load", unit="KGM", minimum=0, maximum=5000),
        Column(
            "capacity", "float", ("binCapacity",), "Volume the container holds", unit="LTR", minimum=0, maximum=10_000
        ),
        Column(
            "max_load", "float", ("binMaxLoad",), "Most weight the container holds", unit="KGM", minimum=0, maximum=5000
        ),
        Column(
            "recommended_load",
            "float",
            ("binRecommendedLoad",),
            "Recommended load",
            unit="KGM",
            minimum=0,
            maximum=5000,
        ),
        Column("temperature", "float", (), "Temperature inside the container", unit="CEL", minimum=-40, maximum=150),
        Column(
            "status",
            "string",
            (),
            "Condition of the container",
            allowed=("ok", "lidOpen", "dropped", "moved", "vandalized", "burning", "unknown"),
        ),
        Column("waste_kind", "string", ("storedWasteKind",), "Kind of waste collected", allowed=WASTE_KINDS),
        Column("bin_color", "string", ("binColor",), "Colour of the bin"),
        Column("bin_id", "string", ("binId",), "Operator's bin number"),
        Column("ward_id", "string", ("wardId",), "Ward (administrative area) of the container"),
        Column("date_last_emptying", "timestamp", ("dateLastEmptying",), "Last time it was emptied, UTC"),
    ),
    key_columns=("container_id",),
    event_time="observed_at",
    licence="CC BY 4.0 (FIWARE examples) / KOGL Type 1 (city feeds)",
    cadence=timedelta(hours=1),
    keywords=("waste", "recycling", "container", "쓰레기", "재활용", "수거"),
)
