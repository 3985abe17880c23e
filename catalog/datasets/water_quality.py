from datetime import timedelta

from catalog.contract import Column, Contract

CONTRACT = Contract(
    id="water_quality",
    title_ko="하천 수질 관측",
    title_en="River water quality",
    description="Automatic water-quality probes in the river and its streams (FIWARE WaterQualityObserved): "
    "temperature, pH, dissolved oxygen, turbidity, conductivity and nutrients. Concentrations in mg/l.",
    entity_type="WaterQualityObserved",
    tier="open",
    columns=(
        Column("station_id", "entity_id", ("id",), "NGSI-LD URN of the observation's entity", required=True),
        Column("observed_at", "timestamp", ("dateObserved",), "Time of the sample, UTC", required=True),
        Column("lon", "lon", ("location",), "Longitude (WGS84)", minimum=-180, maximum=180, required=True),
        Column("lat", "lat", ("location",), "Latitude (WGS84)", minimum=-90, maximum=90, required=True),
        Column("station_name", "string", ("name",), "Station name"),
        Column("temperature", "float", (), "Water temperature", unit="CEL", minimum=-5, maximum=50),
        Column("ph", "float", ("pH",), "pH", minimum=0, maximum=14),
        Column("dissolved_oxygen", "float", ("O2",), "Dissolved oxygen", unit="M1", minimum=0, maximum=30),
        Column("turbidity", "float", (), "Turbidity (NTU)", minimum=0, maximum=4000),
        Column("conductivity", "float", (), "Electrical conductivity", unit="D10", minimum=0, maximum=10),
        Column("bod", "float", (), "Biochemical oxygen demand", unit="M1", minimum=0, maximum=500),
        Column("cod", "float", (), "Chemical oxygen demand", unit="M1", minimum=0, maximum=1000),
        Column("nitrate", "float", ("NO3",), "Nitrate", unit="M1", minimum=0, maximum=500),
        Column("nitrite", "float", ("NO2",), "Nitrite nitrogen", unit="M1", minimum=0, maximum=100),
        Column("total_nitrogen", "float", ("N-TOT",), "Total nitrogen", unit="M1", minimum=0, maximum=200),
        Column("total_phosphorus", "float", ("P-TOT",), "Total phosphorus", unit="M1", minimum=0, maximum=50),
        Column("alkalinity", "float", (), "Alkalinity", unit="M1", minimum=0, maximum=1000),
        Column("sulphate", "float", (), "Sulphate", unit="M1", minimum=0, maximum=5000),
        Column(
            "flow",
            "float",
            (),
            "Water flow (the Han River in a record flood: ~1.3e8 m³/h)",
            unit="MQH",
            minimum=0,
            maximum=200_000_000,
        ),
    ),
    key_columns=("station_id",),
    event_time="observed_at",
    licence="CC BY 4.0 (FIWARE examples) / KOGL Type 1 (city feeds)",
    cadence=timedelta(minutes=15),
    keywords=("water", "river", "water quality", "수질", "하천", "한강"),
)
