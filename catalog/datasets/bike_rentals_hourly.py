from datetime import timedelta

from catalog.contract import Column, Contract

CONTRACT = Contract(
    id="bike_rentals_hourly",
    title_ko="서울시 공공자전거 시간대별 대여 건수와 날씨",
    title_en="Seoul public bike rentals per hour, with the weather",
    description="Bikes rented in the whole city in each hour, with that hour's weather (the 'Seoul Bike "
    "Sharing Demand' data: Date dd/mm/yyyy + Hour in KST, English column names with units, Latin-1). "
    "Hours the system was not operating have Functioning Day = No and 0 rentals.",
    entity_type="BikeRentalsHourly",
    tier="open",
    columns=(
        Column(
            "observed_at",
            "timestamp",
            ("Date",),
            "Start of the hour, UTC (the source gives the day and the hour in KST)",
            required=True,
            time_format="%d/%m/%Y",
            hour_from="Hour",
        ),
        Column("hour", "int", ("Hour",), "Hour of the day in KST", minimum=0, maximum=23, required=True),
        Column(
            "rented_bikes",
            "int",
            ("Rented Bicycle Count",),
            "Bikes rented in the hour",
            minimum=0,
            maximum=100_000,
            required=True,
        ),
        Column("temperature", "float", ("Temperature(°C)",), "Air temperature", unit="CEL", minimum=-30, maximum=45),
        Column(
            "humidity", "float", ("Humidity(%)",), "Relative humidity in percent", unit="P1", minimum=0, maximum=100
        ),
        Column("wind_speed", "float", ("Wind speed (m/s)",), "Wind speed", unit="MTS", minimum=0, maximum=75),
        Column(
            "visibility_10m",
            "int",
            ("Visibility (10m)",),
            "Visibility in tens of metres, as the source gives it (2000 = 20 km)",
            minimum=0,
            maximum=5000,
        ),
        Column("dew_point", "float", ("Dew point temperature(°C)",), "Dew point", unit="CEL", minimum=-50, maximum=40),
        Column(
            "solar_radiation",
            "float",
            ("Solar Radiation (MJ/m2)",),
            "Solar radiation received in the hour, MJ/m²",
            minimum=0,
            maximum=5,
        ),
        Column("rainfall", "float", ("Rainfall(mm)",), "Rain in the hour", unit="MMT", minimum=0, maximum=300),
        Column("snowfall", "float", ("Snowfall (cm)",), "Snow in the hour", unit="CMT", minimum=0, maximum=200),
        Column("season", "string", ("Seasons",), "Season", allowed=("Winter", "Spring", "Summer", "Autumn")),
        Column("holiday", "string", ("Holiday",), "Public holiday or not", allowed=("Holiday", "No Holiday")),
        Column(
            "functioning_day",
            "bool",
            ("Functioning Day",),
            "Whether the rental system was operating (Yes/No)",
            required=True,
        ),
    ),
    key_columns=(),
    event_time="observed_at",
    source_tz="Asia/Seoul",
    licence="CC BY 4.0 (UCI ML Repository 'Seoul Bike Sharing Demand'; Seoul Open Data Plaza and KMA data)",
    cadence=timedelta(hours=1),
    keywords=("bike", "rentals", "demand", "weather", "따릉이", "공공자전거", "대여"),
)
