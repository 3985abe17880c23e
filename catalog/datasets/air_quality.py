from datetime import timedelta

from catalog.contract import Column, Contract

LEVELS = ("good", "moderate", "unhealthyForSensitiveGroups", "unhealthy", "veryUnhealthy", "hazardous")

CONTRACT = Contract(
    id="air_quality",
    title_ko="대기질 관측",
    title_en="Air quality observations",
    description="Hourly air-quality readings of the city's monitoring stations (FIWARE AirQualityObserved).",
    entity_type="AirQualityObserved",
    tier="open",
    columns=(
        Column("station_id", "entity_id", ("id",), "NGSI-LD URN of the observation's entity", required=True),
        Column(
            "observed_at",
            "timestamp",
            ("dateObserved", "dateObservedFrom"),
            "Observation time, UTC",
            required=True,
        ),
        Column("lon", "lon", ("location",), "Longitude (WGS84)", minimum=-180, maximum=180, required=True),
        Column("lat", "lat", ("location",), "Latitude (WGS84)", minimum=-90, maximum=90, required=True),
        Column("station_name", "string", ("name", "areaServed"), "Station or area name"),
        Column("pm10", "float", (), "PM10 concentration", unit="GQ", minimum=0, maximum=1000),
        Column("pm25", "float", (), "PM2.5 concentration", unit="GQ", minimum=0, maximum=1000),
        Column("no2", "float", (), "Nitrogen dioxide", unit="GQ", minimum=0, maximum=2000),
        Column("o3", "float", (), "Ozone", unit="GQ", minimum=0, maximum=2000),
        Column("so2", "float", (), "Sulphur dioxide", unit="GQ", minimum=0, maximum=2000),
        Column("co", "float", (), "Carbon monoxide", unit="GP", minimum=0, maximum=1000),
        Column("temperature", "float", (), "Air temperature", unit="CEL", minimum=-50, maximum=60),
        Column(
            "relative_humidity",
            "float",
            ("relativeHumidity",),
            "Relative humidity, 0–1",
            unit="C62",
            minimum=0,
            maximum=1,
        ),
        Column("air_quality_index", "int", ("airQualityIndex",), "Air quality index", minimum=0, maximum=500),
        Column("air_quality_level", "string", ("airQualityLevel",), "Air quality level", allowed=LEVELS),
    ),
    key_columns=("station_id",),
    event_time="observed_at",
    licence="CC BY 4.0 (FIWARE examples) / KOGL Type 1 (city feeds)",
    cadence=timedelta(hours=1),
    keywords=("air", "pm10", "pm2.5", "대기", "미세먼지"),
)
