from datetime import timedelta

from catalog.contract import Column, Contract

CONTRACT = Contract(
    id="traffic_flow",
    title_ko="도로 교통량",
    title_en="Road traffic flow",
    description="Vehicle counts, occupancy and speeds per road lane in 5-minute intervals "
    "(FIWARE TrafficFlowObserved).",
    entity_type="TrafficFlowObserved",
    tier="open",
    columns=(
        Column("segment_id", "entity_id", ("id",), "NGSI-LD URN of the observed lane segment", required=True),
        Column("observed_at", "timestamp", ("dateObservedFrom", "dateObserved"), "Start of the interval, UTC",
               required=True),
        Column("lon", "lon", ("location",), "Longitude (midpoint of the segment)", minimum=-180, maximum=180,
               required=True),
        Column("lat", "lat", ("location",), "Latitude (midpoint of the segment)", minimum=-90, maximum=90,
               required=True),
        Column("street_address", "string", ("address.streetAddress",), "Street"),
        Column("lane_id", "int", ("laneId",), "Lane number", minimum=0, maximum=20),
        Column("lane_direction", "string", ("laneDirection",), "Lane direction", allowed=("forward", "backward")),
        Column("intensity", "int", (), "Vehicles counted in the interval", minimum=0, maximum=10000,
               required=True),
        Column("occupancy", "float", (), "Fraction of time the detector was occupied", minimum=0, maximum=1),
        Column("average_speed", "float", ("averageVehicleSpeed",), "Mean vehicle speed", unit="KMH", minimum=0,
               maximum=250),
        Column("average_headway", "float", ("averageHeadwayTime",), "Mean headway", unit="SEC", minimum=0,
               maximum=3600),
        Column("average_vehicle_length", "float", ("averageVehicleLength",), "Mean vehicle length", unit="MTR",
               minimum=0, maximum=30),
        Column("reversed_lane", "bool", ("reversedLane",), "Lane is reversed"),
    ),
    key_columns=("segment_id",),
    event_time="observed_at",
    licence="CC BY 4.0 (FIWARE examples) / KOGL Type 1 (city feeds)",
    cadence=timedelta(minutes=5),
    keywords=("traffic", "road", "교통"),
)
