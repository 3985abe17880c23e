from datetime import timedelta

from catalog.contract import KAFKA_TIMESTAMP, Column, Contract
from catalog.places import SEOUL_DISTRICTS

CONTRACT = Contract(
    id="bike_stations",
    title_ko="서울시 공공자전거(따릉이) 대여소",
    title_en="Seoul public bike (Ttareungyi) stations",
    description="Seoul's public-bike rental stations: the station list (bike_loc_info: RENT_ID, CONTENT_NM, "
    "ADDR_GU, CRADLE_COUNT, ...) and the real-time availability feed (bikeList: stationId, rackTotCnt, "
    "parkingBikeTotCnt, ...). Both arrive as strings, counts float-typed ('10.0'); neither carries a time, so "
    "the Kafka record's timestamp is the observation time.",
    entity_type="BikeHireDockingStation",
    tier="open",
    columns=(
        Column("station_id", "string", ("RENT_ID", "stationId"), "Rental station id, e.g. ST-777", required=True),
        Column("observed_at", "timestamp", (KAFKA_TIMESTAMP,), "When the row was published, UTC", required=True),
        Column("station_no", "int", ("CONTENT_ID",), "Station number shown on the kiosk", minimum=0),
        Column("station_name", "string", ("CONTENT_NM", "stationName"), "Station name", required=True),
        Column("district", "string", ("ADDR_GU",), "Autonomous district (자치구)", allowed=SEOUL_DISTRICTS),
        Column("address", "string", ("NEW_ADDR",), "Road-name address (the source glues the name on)"),
        Column("lat", "float", ("LATITUDE", "stationLatitude"), "Latitude (WGS84)", minimum=37.4, maximum=37.75),
        Column("lon", "float", ("LONGITUDE", "stationLongitude"), "Longitude (WGS84)", minimum=126.7, maximum=127.25),
        Column("racks", "int", ("CRADLE_COUNT", "rackTotCnt"), "Docking racks", minimum=0, maximum=200),
        Column(
            "parked_bikes",
            "int",
            ("parkingBikeTotCnt",),
            "Bikes parked at the station now (may exceed the racks)",
            minimum=0,
            maximum=500,
        ),
    ),
    key_columns=("station_id",),
    event_time="observed_at",
    licence="KOGL Type 1 (공공누리 제1유형), Seoul Open Data Plaza OA-15493",
    cadence=timedelta(minutes=10),
    keywords=("bike", "bicycle", "따릉이", "공공자전거", "대여소"),
)
