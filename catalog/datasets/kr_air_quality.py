from datetime import timedelta

from catalog.contract import Column, Contract

CONTRACT = Contract(
    id="kr_air_quality",
    title_ko="전국 실시간 대기오염 정보 (에어코리아)",
    title_en="Nationwide real-time air pollution (AirKorea)",
    description="Hourly readings of every AirKorea station, as the national public data portal serves them "
    "(getCtprvnRltmMesureDnsty): numbers arrive as strings, '-' means missing (with a flag such as 통신장애), "
    "times are KST without an offset. Gases are in ppm, particles in µg/m³.",
    entity_type="AirQualityObserved",
    tier="open",
    columns=(
        Column("sido", "string", ("sidoName",), "Province or metropolitan city", required=True),
        Column("station_name", "string", ("stationName",), "Station name (unique within its sido)", required=True),
        Column("observed_at", "timestamp", ("dataTime",), "Hour of the reading, UTC", required=True),
        Column("pm10", "float", ("pm10Value",), "PM10", unit="GQ", minimum=0, maximum=1000),
        Column("pm25", "float", ("pm25Value",), "PM2.5", unit="GQ", minimum=0, maximum=1000),
        Column("o3", "float", ("o3Value",), "Ozone", unit="59", minimum=0, maximum=1),
        Column("no2", "float", ("no2Value",), "Nitrogen dioxide", unit="59", minimum=0, maximum=1),
        Column("co", "float", ("coValue",), "Carbon monoxide", unit="59", minimum=0, maximum=50),
        Column("so2", "float", ("so2Value",), "Sulphur dioxide", unit="59", minimum=0, maximum=1),
        Column(
            "khai", "int", ("khaiValue",), "Comprehensive air-quality index (통합대기환경지수)", minimum=0, maximum=500
        ),
        Column("khai_grade", "int", ("khaiGrade",), "CAI grade 1 (good) – 4 (very bad)", minimum=1, maximum=4),
        Column("pm10_flag", "string", ("pm10Flag",), "Why PM10 is missing, e.g. 통신장애 (communication failure)"),
        Column("pm25_flag", "string", ("pm25Flag",), "Why PM2.5 is missing"),
    ),
    key_columns=("sido", "station_name"),
    event_time="observed_at",
    source_tz="Asia/Seoul",
    missing_markers=("-", ""),
    licence="KOGL Type 1 (공공누리 제1유형), AirKorea via data.go.kr",
    cadence=timedelta(hours=1),
    keywords=("air", "airkorea", "에어코리아", "미세먼지", "대기오염"),
)
