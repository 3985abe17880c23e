from datetime import timedelta

from catalog.contract import Column, Contract

CONTRACT = Contract(
    id="noise_level",
    title_ko="소음 측정",
    title_en="Noise levels",
    description="A-weighted sound levels measured by street-side sensors over each observation period "
    "(FIWARE NoiseLevelObserved): equivalent (LAeq), slow (LAS) and maximum (LAmax) levels.",
    entity_type="NoiseLevelObserved",
    tier="open",
    columns=(
        Column("sensor_id", "entity_id", ("id",), "NGSI-LD URN of the observation's entity", required=True),
        Column(
            "observed_at",
            "timestamp",
            ("dateObservedFrom", "dateObserved"),
            "Start of the observation period, UTC",
            required=True,
        ),
        Column("observed_until", "timestamp", ("dateObservedTo",), "End of the observation period, UTC"),
        Column("lon", "lon", ("location",), "Longitude (WGS84)", minimum=-180, maximum=180, required=True),
        Column("lat", "lat", ("location",), "Latitude (WGS84)", minimum=-90, maximum=90, required=True),
        Column(
            "laeq",
            "float",
            ("LAeq",),
            "A-weighted equivalent sound level over the period",
            unit="2N",
            minimum=0,
            maximum=150,
            required=True,
        ),
        Column(
            "las", "float", ("LAS",), "A-weighted sound level, slow time weighting", unit="2N", minimum=0, maximum=150
        ),
        Column("lamax", "float", ("LAmax",), "A-weighted maximum sound level", unit="2N", minimum=0, maximum=150),
        Column(
            "laeq_d", "float", ("LAeq_d",), "A-weighted equivalent level of the day", unit="2N", minimum=0, maximum=150
        ),
        Column(
            "sonometer_class",
            "string",
            ("sonometerClass",),
            "Class of the sound level meter (IEC 61672: 0, 1 or 2)",
            allowed=("0", "1", "2"),
        ),
    ),
    key_columns=("sensor_id",),
    event_time="observed_at",
    licence="CC BY 4.0 (FIWARE examples) / KOGL Type 1 (city feeds)",
    cadence=timedelta(minutes=10),
    keywords=("noise", "sound", "LAeq", "소음"),
)
