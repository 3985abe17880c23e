"""Simulated city feeds: deterministic under a seed, at real station locations, following daily curves.

Readings are NGSI-LD keyValues entities, the form a FIWARE IoT agent publishes, or — for the Korean portal
feeds (kr_air_quality, bike_stations, bike_rentals_hourly) — rows as the portal serves them, strings and all.
Values follow the contract's ranges; a share ``bad_ratio`` of records is deliberately broken in one of the
named ``BAD_KINDS`` that apply to the feed, so that the quarantine path is exercised with every demo and test.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

import numpy as np

from catalog.contract import Contract
from infra.errors import CatalogError

STATIONS = Path(__file__).resolve().parent.parent / "catalog" / "stations"
BAD_KINDS = ("out_of_range", "missing_field", "wrong_type", "malformed_json", "unknown_value")
SEOUL = timedelta(hours=9)
TRAFFIC_SITES = 200


@dataclass(frozen=True)
class Record:
    key: bytes
    value: bytes


@cache
def stations(name: str) -> list[dict[str, str]]:
    with open(STATIONS / f"{name}.csv", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _local_hours(times: np.ndarray) -> np.ndarray:
    """Hour of day in Seoul (float) for UTC epoch seconds."""
    return ((times + SEOUL.total_seconds()) % 86400) / 3600.0


def _daily(hours: np.ndarray, peak: float, width: float = 3.0) -> np.ndarray:
    return np.exp(-(((hours - peak + 12) % 24 - 12) ** 2) / (2 * width**2))


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(float(seconds), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _point(lon: float, lat: float) -> dict:
    return {"type": "Point", "coordinates": [round(float(lon), 6), round(float(lat), 6)]}


def _slots(count: int, n_sites: int, start: datetime, cadence: timedelta) -> tuple[np.ndarray, np.ndarray]:
    index = np.arange(count)
    site = index % n_sites
    times = start.timestamp() + (index // n_sites) * cadence.total_seconds()
    return site, times


def _air_quality(rng: np.random.Generator, count: int, start: datetime) -> list[dict]:
    sites = stations("airkorea_seoul")
    site, times = _slots(count, len(sites), start, timedelta(hours=1))
    hours = _local_hours(times)
    traffic = 0.6 * _daily(hours, 8.5) + 0.5 * _daily(hours, 19) + 0.3
    pm10 = np.clip(rng.gamma(4.0, 9.0, count) * traffic + 8, 0, 600)
    pm25 = np.clip(pm10 * rng.uniform(0.35, 0.65, count), 0, 400)
    no2 = np.clip(rng.normal(45, 12, count) * traffic, 1, 400)
    o3 = np.clip(rng.normal(60, 15, count) * (0.4 + _daily(hours, 15, 4)), 1, 400)
    so2 = np.clip(rng.normal(8, 2, count), 1, 100)
    co = np.clip(rng.normal(0.5, 0.15, count) * traffic, 0.05, 10)
    temp = 8 + 7 * _daily(hours, 15, 5) + rng.normal(0, 1, count)
    rh = np.clip(0.75 - 0.3 * _daily(hours, 15, 5) + rng.normal(0, 0.05, count), 0.05, 1)
    aqi = np.clip(pm10 * 1.1, 0, 500).astype(int)
    levels = np.select([aqi <= 30, aqi <= 80, aqi <= 150], ["good", "moderate", "unhealthy"], "veryUnhealthy")
    out = []
    for i in range(count):
        s = sites[site[i]]
        out.append(
            {
                "id": f"urn:ngsi-ld:AirQualityObserved:{s['station_id']}:{int(times[i])}",
                "type": "AirQualityObserved",
                "dateObserved": _iso(times[i]),
                "location": _point(s["lon"], s["lat"]),
                "name": s["station_name"],
                "pm10": round(pm10[i], 1),
                "pm25": round(pm25[i], 1),
                "no2": round(no2[i], 1),
                "o3": round(o3[i], 1),
                "so2": round(so2[i], 1),
                "co": round(co[i], 2),
                "temperature": round(temp[i], 1),
                "relativeHumidity": round(rh[i], 2),
                "airQualityIndex": int(aqi[i]),
                "airQualityLevel": levels[i],
            }
        )
    return out


def _traffic_flow(rng: np.random.Generator, count: int, start: datetime) -> list[dict]:
    sites = stations("sdot_seoul")[:TRAFFIC_SITES]
    site, times = _slots(count, len(sites), start, timedelta(minutes=5))
    hours = _local_hours(times)
    demand = 0.25 + 0.9 * _daily(hours, 8, 1.5) + 0.8 * _daily(hours, 18.5, 2)
    intensity = rng.poisson(60 * demand)
    occupancy = np.clip(intensity / 160 + rng.normal(0, 0.02, count), 0, 1)
    speed = np.clip(70 - 45 * occupancy + rng.normal(0, 5, count), 3, 110)
    out = []
    for i in range(count):
        s = sites[site[i]]
        lon, lat = float(s["lon"]), float(s["lat"])
        out.append(
            {
                "id": f"urn:ngsi-ld:TrafficFlowObserved:{s['site_id']}:{int(times[i])}",
                "type": "TrafficFlowObserved",
                "dateObserved": f"{_iso(times[i])}/{_iso(times[i] + 300)}",
                "dateObservedFrom": _iso(times[i]),
                "dateObservedTo": _iso(times[i] + 300),
                "location": {
                    "type": "LineString",
                    "coordinates": [
                        [round(lon, 6), round(lat, 6)],
                        [round(lon + 0.0015, 6), round(lat + 0.0008, 6)],
                    ],
                },
                "laneId": int(site[i] % 3) + 1,
                "laneDirection": "forward" if site[i] % 2 else "backward",
                "intensity": int(intensity[i]),
                "occupancy": round(float(occupancy[i]), 3),
                "averageVehicleSpeed": round(float(speed[i]), 1),
                "averageHeadwayTime": round(300 / max(1, intensity[i]), 2),
                "averageVehicleLength": round(float(rng.normal(5.2, 0.8)), 2),
                "reversedLane": False,
            }
        )
    return out


def _parking_spots(rng: np.random.Generator, count: int, start: datetime) -> list[dict]:
    sites = stations("seoul_bike")[:300]
    site, _ = _slots(count, len(sites), start, timedelta(minutes=1))
    times = start.timestamp() + np.sort(rng.uniform(0, 3600, count))
    busy = 0.3 + 0.6 * _daily(_local_hours(times), 13, 4)
    occupied = rng.random(count) < busy
    return [
        {
            "id": f"urn:ngsi-ld:ParkingSpot:seoul:{sites[site[i]]['station_id']}:{site[i] % 8}",
            "type": "ParkingSpot",
            "name": f"{sites[site[i]]['district']}-{site[i] % 8 + 1:02d}",
            "location": _point(float(sites[site[i]]["lon"]) + 0.00005 * (site[i] % 8), sites[site[i]]["lat"]),
            "status": "occupied" if occupied[i] else "free",
            "category": ["onStreet"],
            "refParkingSite": f"urn:ngsi-ld:ParkingSite:seoul:{sites[site[i]]['station_id']}",
            "dateObserved": _iso(times[i]),
        }
        for i in range(count)
    ]


def _mobility_trips(rng: np.random.Generator, count: int, start: datetime) -> list[dict]:
    sites = stations("seoul_bike")
    riders = max(20, count // 4)
    origin = rng.integers(0, len(sites), count)
    dest = (origin + rng.integers(1, 40, count)) % len(sites)
    starts = start.timestamp() + np.sort(rng.uniform(0, 3600, count))
    modes = rng.choice(["e_scooter", "bike", "drt"], count, p=[0.5, 0.4, 0.1])
    speed = np.select([modes == "e_scooter", modes == "bike"], [4.0, 3.5], 8.0)
    out = []
    for i in range(count):
        a, b = sites[origin[i]], sites[dest[i]]
        dist = (
            float(
                np.hypot(
                    (float(a["lon"]) - float(b["lon"])) * 88_000,
                    (float(a["lat"]) - float(b["lat"])) * 111_000,
                )
            )
            * 1.3
            + 200
        )
        duration = dist / speed[i]
        out.append(
            {
                "id": f"urn:ngsi-ld:MobilityTrip:trip-{int(starts[i])}-{i}",
                "type": "MobilityTrip",
                "riderId": f"rider-{int(rng.integers(0, riders)):06d}",
                "vehicleType": modes[i],
                "startTime": _iso(starts[i]),
                "endTime": _iso(starts[i] + duration),
                "startLocation": _point(a["lon"], a["lat"]),
                "endLocation": _point(b["lon"], b["lat"]),
                "distance": round(dist, 1),
                "fare": int(1000 + 150 * (duration // 60)),
            }
        )
    return out


def _kr_air_quality(rng: np.random.Generator, count: int, start: datetime) -> list[dict]:
    """Rows as Korea's public data portal serves them: strings everywhere, '-' plus a flag when missing."""
    readings = _air_quality(rng, count, start)
    sites = stations("airkorea_seoul")
    site, _ = _slots(count, len(sites), start, timedelta(hours=1))
    broken = rng.random(count) < 0.03  # a communication failure now and then, as in the real feed
    out = []
    for i, reading in enumerate(readings):
        local = datetime.fromisoformat(reading["dateObserved"].replace("Z", "+00:00")) + SEOUL
        pm_missing = bool(broken[i])
        out.append(
            {
                "sidoName": "서울",
                "stationName": sites[site[i]]["station_name"],
                "dataTime": local.strftime("%Y-%m-%d %H:00"),
                "pm10Value": "-" if pm_missing else f"{reading['pm10']:.0f}",
                "pm25Value": "-" if pm_missing else f"{reading['pm25']:.0f}",
                "pm10Flag": "통신장애" if pm_missing else None,
                "pm25Flag": "통신장애" if pm_missing else None,
                "o3Value": f"{reading['o3'] / 1960:.3f}",
                "no2Value": f"{reading['no2'] / 1880:.3f}",
                "coValue": f"{reading['co']:.1f}",
                "so2Value": f"{reading['so2'] / 2620:.3f}",
                "khaiValue": "-" if pm_missing else str(reading["airQualityIndex"]),
                "khaiGrade": None if pm_missing else str(min(4, 1 + reading["airQualityIndex"] // 50)),
            }
        )
    return out


# --- the feeds added with weather, noise, streetlights, waste, water, bikes, care and energy -------------------------

WEATHER_SITES = 25
NOISE_SITES = 50
STREETLIGHTS = 100
WASTE_CONTAINERS = 150
CARE_HOUSEHOLDS = 100
ENERGY_METERS = 200
METERS_PER_BUILDING = 5
# Mean rentals per hour of day (KST) in autumn 2018, from the real 'Seoul Bike Sharing Demand' file
# (tests/fixtures/city_csv/seoul_bike_hourly): the commute peaks at 8 and 18 h, the night low at 4-5 h.
RENTALS_BY_HOUR = np.array(
    [709, 552, 377, 257, 169, 163, 359, 789, 1345, 848, 715, 803]
    + [935, 1003, 1059, 1157, 1293, 1563, 1983, 1516, 1322, 1254, 1130, 829],
    dtype=float,
)
# Korea's fixed-date public holidays (month, day): 신정, 삼일절, 어린이날, 현충일, 광복절, 개천절, 한글날, 성탄절
FIXED_HOLIDAYS = {(1, 1), (3, 1), (5, 5), (6, 6), (8, 15), (10, 3), (10, 9), (12, 25)}


def _spread(rows: list[dict[str, str]], n: int, offset: int = 0) -> list[dict[str, str]]:
    """``n`` rows spread evenly over the list (so the sites cover the whole city), starting at ``offset``."""
    step = max(1, len(rows) // n)
    return [rows[(offset + i * step) % len(rows)] for i in range(n)]


def _day_of_year(times: np.ndarray) -> np.ndarray:
    local = (times + SEOUL.total_seconds()).astype("datetime64[s]")
    return (local.astype("datetime64[D]") - local.astype("datetime64[Y]")).astype(int) + 1


def _season_temperature(times: np.ndarray) -> np.ndarray:
    """Seoul's daily mean air temperature by day of year: about -2 °C in mid-January, 26 °C in early August."""
    return 12.0 - 14.0 * np.cos(2 * np.pi * (_day_of_year(times) - 20) / 365.25)


def _daylight(times: np.ndarray) -> np.ndarray:
    """0 at night, up to 1 at solar noon (12:30 KST); the day is ~9.6 h long at the winter solstice, ~14.8 h in June."""
    length = 12.2 + 2.6 * np.sin(2 * np.pi * (_day_of_year(times) - 80) / 365.25)
    phase = (_local_hours(times) - 12.5) / length
    return np.clip(np.cos(np.pi * phase), 0, None) * (np.abs(phase) < 0.5)


def _dew_point(temperature: np.ndarray, humidity: np.ndarray) -> np.ndarray:
    """Magnus formula (°C) from air temperature (°C) and relative humidity (0–1)."""
    gamma = np.log(np.clip(humidity, 0.01, 1)) + 17.62 * temperature / (243.12 + temperature)
    return 243.12 * gamma / (17.62 - gamma)


def _weather_observed(rng: np.random.Generator, count: int, start: datetime) -> list[dict]:
    """S-DoT street-side sensors: temperature, humidity, wind, light and UV every 10 minutes."""
    sites = _spread(stations("sdot_seoul"), WEATHER_SITES)
    site, times = _slots(count, len(sites), start, timedelta(minutes=10))
    hours, sun = _local_hours(times), _daylight(times)
    heat_island = np.random.default_rng(len(sites)).normal(0, 0.8, len(sites))[site]
    temperature = _season_temperature(times) - 3 + 7 * _daily(hours, 15, 4) + heat_island + rng.normal(0, 0.4, count)
    humidity = np.clip(0.72 - 0.25 * _daily(hours, 15, 4) + rng.normal(0, 0.05, count), 0.12, 1)
    raining = rng.random(count) < 0.06
    rain = np.where(raining, np.round(rng.gamma(0.8, 0.9, count), 1), 0.0)
    humidity = np.where(raining, np.clip(humidity + 0.2, 0, 1), humidity)
    clouds = np.where(raining, 0.25, rng.uniform(0.55, 1.0, count))
    wind = np.clip(rng.gamma(2.2, 0.8, count) * (0.7 + 0.6 * _daily(hours, 14, 4)), 0, 30)
    # north-westerlies in the cold months, south-westerlies in summer
    prevailing = np.where(np.abs(_day_of_year(times) - 200) < 75, 225.0, 300.0)
    direction = np.degrees(rng.vonmises(np.radians(prevailing), 1.5, count)) % 360
    summer = 0.55 + 0.45 * np.sin(2 * np.pi * (_day_of_year(times) - 80) / 365.25)
    illuminance = np.where(sun > 0, 95_000 * sun * clouds, rng.uniform(5, 40, count))
    uv = 10 * sun * summer * clouds
    pressure = 1016 - 8 * summer + rng.normal(0, 1.5, count) - np.where(raining, 6, 0)
    return [
        {
            "id": f"urn:ngsi-ld:WeatherObserved:seoul-sdot-{sites[site[i]]['site_id']}",
            "type": "WeatherObserved",
            "dateObserved": _iso(times[i]),
            "location": _point(sites[site[i]]["lon"], sites[site[i]]["lat"]),
            "name": f"S-DoT {sites[site[i]]['site_id']}",
            "address": {"addressLocality": "서울특별시", "addressCountry": "KR"},
            "temperature": round(float(temperature[i]), 1),
            "relativeHumidity": round(float(humidity[i]), 2),
            "dewPoint": round(float(_dew_point(temperature[i], humidity[i])), 1),
            "atmosphericPressure": round(float(pressure[i]), 1),
            "precipitation": float(rain[i]),
            "windSpeed": round(float(wind[i]), 1),
            "windDirection": round(float(direction[i])),
            "illuminance": round(float(illuminance[i])),
            "uVIndexMax": round(float(uv[i]), 1),
            "dataProvider": "Seoul S-DoT",
            "refDevice": f"urn:ngsi-ld:Device:sdot-{sites[site[i]]['site_id']}",
        }
        for i in range(count)
    ]


def _noise_level(rng: np.random.Generator, count: int, start: datetime) -> list[dict]:
    """S-DoT noise sensors: 10-minute LAeq that follows the road traffic (the traffic_flow demand curve)."""
    sites = _spread(stations("sdot_seoul"), NOISE_SITES, offset=7)
    site, times = _slots(count, len(sites), start, timedelta(minutes=10))
    hours = _local_hours(times)
    demand = 0.25 + 0.9 * _daily(hours, 8, 1.5) + 0.8 * _daily(hours, 18.5, 2) + 0.3 * _daily(hours, 13, 4)
    road = np.random.default_rng(len(sites)).uniform(0, 12, len(sites))[site]  # quiet lane ... arterial road
    laeq = np.clip(44 + 12 * np.log10(demand / 0.25) + road + rng.normal(0, 1.5, count), 30, 100)
    las = np.clip(laeq + rng.normal(1.5, 2, count), 30, 110)
    lamax = np.clip(laeq + rng.gamma(3, 4, count), 35, 130)
    return [
        {
            "id": f"urn:ngsi-ld:NoiseLevelObserved:seoul-sdot-{sites[site[i]]['site_id']}",
            "type": "NoiseLevelObserved",
            "dateObservedFrom": _iso(times[i]),
            "dateObservedTo": _iso(times[i] + 600),
            "location": _point(sites[site[i]]["lon"], sites[site[i]]["lat"]),
            "LAeq": round(float(laeq[i]), 1),
            "LAS": round(float(las[i]), 1),
            "LAmax": round(float(lamax[i]), 1),
            "sonometerClass": "2",
        }
        for i in range(count)
    ]


def _streetlights(rng: np.random.Generator, count: int, start: datetime) -> list[dict]:
    """Smart streetlights beside public-bike stations: on from dusk to dawn, dimmed after midnight, a few faulty."""
    sites = _spread(stations("seoul_bike"), STREETLIGHTS, offset=3)
    site, times = _slots(count, len(sites), start, timedelta(minutes=15))
    hours = _local_hours(times)
    fixed = np.random.default_rng(len(sites))  # what each light is: the same in every reading
    rating = fixed.choice([60.0, 100.0, 150.0, 250.0], len(sites), p=[0.2, 0.4, 0.3, 0.1])[site]
    height = fixed.choice([6.0, 8.0, 10.0, 12.0], len(sites))[site]
    category = fixed.choice(
        ["road", "sidewalk", "pedestrianPath", "park", "bridge"], len(sites), p=[0.5, 0.25, 0.1, 0.1, 0.05]
    )[site]
    status = fixed.choice(
        ["ok", "defectiveLamp", "brokenLantern", "columnIssue"], len(sites), p=[0.95, 0.03, 0.01, 0.01]
    )[site]
    lifetime = fixed.uniform(800, 9000, len(sites))[site] + (times - 1.7e9) / 3600 * rating / 2000
    lamp_changed = 1.55e9 + fixed.uniform(0, 1.7e8, len(sites))[site]
    dark = _daylight(times) == 0
    dimmed = dark & (hours >= 0) & (hours < 5)
    state = np.where(dark, np.where(dimmed, "low", "on"), "off")
    level = np.where(dark, np.where(dimmed, 0.5, 1.0), 0.0)
    lit = dark & (status != "defectiveLamp")
    power = np.where(lit, rating * level * rng.normal(1.0, 0.03, count), rng.uniform(0.8, 2.0, count))
    out = []
    for i in range(count):
        s = sites[site[i]]
        out.append(
            {
                "id": f"urn:ngsi-ld:Streetlight:seoul-{s['station_id']}",
                "type": "Streetlight",
                "location": _point(float(s["lon"]) + 0.00015, float(s["lat"]) + 0.0001),
                "areaServed": s["name"],
                "status": str(status[i]),
                "powerState": str(state[i]),
                "illuminanceLevel": float(level[i]),
                "powerConsumption": round(float(power[i]), 1),
                "powerRating": float(rating[i]),
                "powerFactor": round(float(np.clip(rng.normal(0.95, 0.015), 0.85, 1)), 2),
                "voltage": round(float(rng.normal(220, 2.5)), 1),
                "lifetimePowerConsumption": round(float(lifetime[i]), 1),
                "lanternHeight": float(height[i]),
                "locationCategory": str(category[i]),
                "controllingMethod": "group",
                "refStreetlightGroup": f"urn:ngsi-ld:StreetlightGroup:seoul-{s['district']}",
                "municipalityInfo": {"district": s["district"], "cityName": "서울특별시"},
                "circuit": f"{s['district']}-C{int(site[i]) % 40 + 1:02d}",
                "dateLastLampChange": _iso(lamp_changed[i]),
                "observationDateTime": _iso(times[i]),
            }
        )
    return out


def _waste_containers(rng: np.random.Generator, count: int, start: datetime) -> list[dict]:
    """Fill-level sensors in street and apartment bins: they fill through the day and are emptied at night."""
    sites = _spread(stations("seoul_bike"), WASTE_CONTAINERS, offset=11)
    site, times = _slots(count, len(sites), start, timedelta(hours=1))
    hours = _local_hours(times)
    fixed = np.random.default_rng(len(sites))
    kinds = np.array(["other", "plastic", "paper", "glass", "metal", "organic"])
    kind = fixed.choice(len(kinds), len(sites), p=[0.4, 0.2, 0.15, 0.08, 0.07, 0.1])[site]
    colors = np.array(["Grey", "Yellow", "Blue", "Green", "Red", "Brown"])
    capacity = fixed.choice([120.0, 240.0, 660.0, 1100.0], len(sites), p=[0.2, 0.4, 0.3, 0.1])[site]
    density = np.array([0.15, 0.04, 0.08, 0.3, 0.1, 0.6])[kind]  # kg per litre when full
    collected = fixed.choice([21, 22, 23, 0, 1, 2, 3, 4], len(sites))[site]  # Seoul collects at night
    rate = fixed.uniform(0.025, 0.06, len(sites))[site]  # share of the bin filled per hour of the day
    since = (hours - collected) % 24
    filling = np.clip(rate * since * (0.6 + 0.8 * _daily(hours, 14, 5)) + rng.normal(0, 0.02, count), 0, 1)
    status = rng.choice(["ok", "lidOpen", "unknown"], count, p=[0.96, 0.03, 0.01])
    temperature = _season_temperature(times) + 4 * _daily(hours, 15, 4) + np.where(kind == 5, 3, 0)
    out = []
    for i in range(count):
        s = sites[site[i]]
        out.append(
            {
                "id": f"urn:ngsi-ld:WasteContainer:seoul-{s['station_id']}",
                "type": "WasteContainer",
                "location": _point(float(s["lon"]) - 0.0002, float(s["lat"]) + 0.00012),
                "fillingLevel": round(float(filling[i]), 2),
                "cargoWeight": round(float(filling[i] * capacity[i] * density[i]), 1),
                "temperature": round(float(temperature[i] + rng.normal(0, 0.5)), 1),
                "status": str(status[i]),
                "storedWasteKind": str(kinds[kind[i]]),
                "binColor": str(colors[kind[i]]),
                "binCapacity": float(capacity[i]),
                "binMaxLoad": round(float(capacity[i] * 0.4)),
                "binFullnessThreshold": 80,
                "binId": f"{s['district']}-{s['station_id']}",
                "binLoggedTime": _iso(times[i]),
                "dateLastEmptying": _iso(times[i] - since[i] * 3600),
            }
        )
    return out


def _water_quality(rng: np.random.Generator, count: int, start: datetime) -> list[dict]:
    """Automatic probes on the Han River and its streams every 15 minutes: photosynthesis lifts pH and oxygen in
    the afternoon; the streams carry more nutrients and salts than the river."""
    sites = stations("seoul_waterside")
    site, times = _slots(count, len(sites), start, timedelta(minutes=15))
    hours = _local_hours(times)
    stream = np.array([s["water_body"] != "한강" for s in sites])[site]
    sun = _daily(hours, 15, 4)
    temperature = 14 - 11.5 * np.cos(2 * np.pi * (_day_of_year(times) - 30) / 365.25) + 0.8 * sun
    temperature += rng.normal(0, 0.15, count)
    saturation = 14.62 - 0.3898 * temperature + 0.006969 * temperature**2 - 0.00005897 * temperature**3
    oxygen = saturation * (0.85 + 0.25 * sun) + rng.normal(0, 0.2, count)
    ph = np.where(stream, 7.7, 7.4) + 0.45 * sun + rng.normal(0, 0.05, count)
    turbidity = rng.lognormal(np.where(stream, 1.0, 1.4), 0.35, count)
    conductivity = np.where(stream, 0.045, 0.028) * rng.normal(1, 0.04, count)
    nitrogen = np.where(stream, 4.5, 2.8) * rng.normal(1, 0.06, count)
    phosphorus = np.where(stream, 0.15, 0.05) * rng.lognormal(0, 0.2, count)
    flow = np.where(stream, 11_000.0, 2_200_000.0) * rng.lognormal(0, 0.08, count)
    return [
        {
            "id": f"urn:ngsi-ld:WaterQualityObserved:seoul-{sites[site[i]]['station_id']}",
            "type": "WaterQualityObserved",
            "dateObserved": _iso(times[i]),
            "location": _point(sites[site[i]]["lon"], sites[site[i]]["lat"]),
            "name": f"{sites[site[i]]['water_body']} {sites[site[i]]['name']}",
            "temperature": round(float(temperature[i]), 1),
            "pH": round(float(ph[i]), 2),
            "O2": round(float(oxygen[i]), 1),
            "turbidity": round(float(turbidity[i]), 1),
            "conductivity": round(float(conductivity[i]), 4),
            "bod": round(float(np.clip(rng.normal(2.5 if stream[i] else 1.6, 0.3), 0.2, None)), 1),
            "cod": round(float(np.clip(rng.normal(6.0 if stream[i] else 4.2, 0.5), 0.5, None)), 1),
            "NO3": round(float(nitrogen[i] * 3.2), 2),
            "NO2": round(float(nitrogen[i] * 0.015), 3),
            "N-TOT": round(float(nitrogen[i]), 2),
            "P-TOT": round(float(phosphorus[i]), 3),
            "flow": round(float(flow[i])),
        }
        for i in range(count)
    ]


def _bike_stations(rng: np.random.Generator, count: int, start: datetime) -> list[dict]:
    """The real-time availability feed (Seoul OpenAPI bikeList): strings, no time. Bikes leave residential
    stations in the morning and return in the evening; business districts do the opposite."""
    sites = stations("seoul_bike")
    site = np.arange(count) % len(sites)
    now = np.full(count, start.timestamp() + 3600 * (1 + np.arange(count) // len(sites)))
    hours = _local_hours(now)
    racks = np.array([int(s["capacity"]) for s in sites])[site]
    office = np.random.default_rng(len(sites)).random(len(sites))[site] < 0.35
    swing = _daily(hours, 9, 2) - _daily(hours, 19, 2.5)
    fullness = np.clip(0.55 + np.where(office, 0.5, -0.4) * swing + rng.normal(0, 0.15, count), 0, 1.8)
    parked = rng.binomial(np.maximum(1, np.round(racks * fullness)).astype(int), 0.9)
    return [
        {
            "stationId": sites[site[i]]["station_id"],
            "stationName": sites[site[i]]["name"],
            "rackTotCnt": str(racks[i]),
            "parkingBikeTotCnt": str(parked[i]),
            "shared": str(round(100 * parked[i] / max(1, racks[i]))),
            "stationLatitude": f"{float(sites[site[i]]['lat']):.8f}",
            "stationLongitude": f"{float(sites[site[i]]['lon']):.8f}",
        }
        for i in range(count)
    ]


def _figure(value: float, digits: int = 1) -> str:
    """A number as the UCI bike file writes it: ``-5.2``, ``22`` (no ``.0``), ``0.39``."""
    text = f"{round(float(value), digits):.{digits}f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _bike_rentals_hourly(rng: np.random.Generator, count: int, start: datetime) -> list[dict]:
    """City-wide rentals per hour with the hour's weather, in the columns of the 'Seoul Bike Sharing Demand' file
    (a KST day as dd/mm/yyyy in ``Date`` and the hour apart in ``Hour``)."""
    times = start.timestamp() + 3600 * np.arange(count)
    hours, doy = _local_hours(times), _day_of_year(times)
    local = [datetime.fromtimestamp(float(t), UTC) + SEOUL for t in times]
    weekday = np.array([d.weekday() < 5 and (d.month, d.day) not in FIXED_HOLIDAYS for d in local])
    temperature = _season_temperature(times) - 3 + 7 * _daily(hours, 15, 4) + rng.normal(0, 1, count)
    humidity = np.clip(70 - 25 * _daily(hours, 15, 4) + rng.normal(0, 8, count), 10, 98)
    rain = np.where(rng.random(count) < 0.07, np.round(rng.gamma(0.9, 1.5, count), 1), 0.0)
    snow = np.where((temperature < 0) & (rng.random(count) < 0.05), np.round(rng.gamma(1, 0.5, count), 1), 0.0)
    sun = _daylight(times)
    solar = 3.2 * sun * (0.55 + 0.45 * np.sin(2 * np.pi * (doy - 80) / 365.25)) * np.where(rain > 0, 0.2, 1.0)
    visibility = np.clip(2000 - 18 * np.clip(humidity - 40, 0, None) + rng.normal(0, 150, count), 30, 2000)
    weekend = 1 - 0.45 * _daily(hours, 8, 1) - 0.25 * _daily(hours, 18, 1.2) + 0.2 * _daily(hours, 15, 3)
    warmth = np.clip((temperature + 10) / 30, 0.15, 1.15)
    weather = np.where(rain > 0, 0.25, 1.0) * np.where(snow > 0, 0.4, 1.0)
    demand = RENTALS_BY_HOUR[hours.astype(int)] * warmth * np.where(weekday, 1.0, weekend) * weather
    rented = rng.poisson(demand)
    seasons = np.array(
        ["Winter", "Winter", "Spring", "Spring", "Spring", "Summer"]
        + ["Summer", "Summer"]
        + ["Autumn"] * 3
        + ["Winter"]
    )
    return [
        {
            "Date": local[i].strftime("%d/%m/%Y"),
            "Rented Bicycle Count": str(rented[i]),
            "Hour": str(local[i].hour),
            "Temperature(°C)": _figure(temperature[i]),
            "Humidity(%)": _figure(humidity[i], 0),
            "Wind speed (m/s)": _figure(rng.gamma(2, 0.8)),
            "Visibility (10m)": _figure(visibility[i], 0),
            "Dew point temperature(°C)": _figure(_dew_point(temperature[i], humidity[i] / 100)),
            "Solar Radiation (MJ/m2)": _figure(solar[i], 2),
            "Rainfall(mm)": _figure(rain[i]),
            "Snowfall (cm)": _figure(snow[i]),
            "Seasons": str(seasons[local[i].month - 1]),
            "Holiday": "Holiday" if (local[i].month, local[i].day) in FIXED_HOLIDAYS else "No Holiday",
            "Functioning Day": "Yes",
        }
        for i in range(count)
    ]


def _districts(n: int, offset: int) -> list[str]:
    return [s["district"] for s in _spread(stations("seoul_bike"), n, offset)]


def _care_sensors(rng: np.random.Generator, count: int, start: datetime) -> list[dict]:
    """In-home sensors of older people living alone, every 10 minutes: awake from about 6 to 22 h with meal-time
    bustle, a few bathroom trips at night, TV and a heated mat in the evening. One in a hundred homes has shown
    no motion for over 12 hours: the hub raises an inactivity alert. Each reading carries the resident's age,
    as the hub's registration in the care programme (65 and over) gives it."""
    districts = _districts(CARE_HOUSEHOLDS, 5)
    home, times = _slots(count, CARE_HOUSEHOLDS, start, timedelta(minutes=10))
    end = times + 600
    hours = _local_hours(end)
    fixed = np.random.default_rng(CARE_HOUSEHOLDS)
    wake = fixed.normal(6.2, 0.6, CARE_HOUSEHOLDS)[home]
    sleep = fixed.normal(21.3, 0.7, CARE_HOUSEHOLDS)[home]
    still = home % 100 == 37  # one home in a hundred where nobody moves: the case the programme exists for
    base_load = fixed.uniform(45, 110, CARE_HOUSEHOLDS)[home]
    battery = fixed.uniform(0.15, 1.0, CARE_HOUSEHOLDS)[home]
    awake = (hours >= wake) & (hours < sleep)
    bustle = 1 + 1.5 * (_daily(hours, 7.5, 0.8) + _daily(hours, 12.5, 0.8) + _daily(hours, 18.3, 0.8))
    motion = np.where(still, 0, rng.poisson(np.where(awake, 4.0 * bustle, 0.15)))
    out_door = rng.poisson(np.where(awake & (hours > 9) & (hours < 17), 0.12, 0.005))
    door_open = (out_door > 0) & (rng.random(count) < 0.08)
    asleep_for = ((hours - sleep) % 24) * 60
    since = np.where(motion > 0, rng.integers(0, 10, count), np.where(awake, rng.integers(10, 90, count), asleep_for))
    quiet_since = start.timestamp() - fixed.uniform(12.5, 20, CARE_HOUSEHOLDS)[home] * 3600
    since = np.where(still, (end - quiet_since) / 60, since).astype(int)
    # the care recipient's age from the programme's register: 65 and over, most in their seventies and eighties
    age = np.minimum(65 + fixed.gamma(2.2, 5.5, CARE_HOUSEHOLDS), 99).astype(int)[home]
    cold = np.clip((18 - _season_temperature(end)) / 20, 0, 1)
    power = base_load + np.where(awake, 60 + 140 * rng.random(count) * bustle, 0) + 110 * _daily(hours, 20, 1.5)
    power += np.where(~awake, 150 * cold, 0) + rng.normal(0, 8, count)
    anomaly = rng.random(count) < 0.002  # a heater left on
    power = np.clip(np.where(anomaly, power + 2800, power), 5, None)
    temperature = 21 + 5 * (1 - cold) + rng.normal(0, 0.6, count) - np.where(awake, 0, 1)
    alert = np.select(
        [since > 720, anomaly, door_open & (since > 30)], ["inactivity", "powerAnomaly", "doorLeftOpen"], "normal"
    )
    return [
        {
            "id": f"urn:ngsi-ld:CareSensorObserved:hub-{2_310_000 + int(home[i])}",
            "type": "CareSensorObserved",
            "householdId": f"care-{int(home[i]):06d}",
            "district": districts[home[i]],
            "residentAge": int(age[i]),
            "dateObserved": _iso(end[i]),
            "motionCount": int(motion[i]),
            "doorOpenCount": int(out_door[i]),
            "doorState": "open" if door_open[i] else "closed",
            "minutesSinceMotion": int(since[i]),
            "powerConsumption": round(float(power[i]), 1),
            "temperature": round(float(temperature[i]), 1),
            "relativeHumidity": round(float(np.clip(rng.normal(0.45, 0.08), 0.15, 0.9)), 2),
            "batteryLevel": round(float(battery[i]), 2),
            "alertStatus": str(alert[i]),
        }
        for i in range(count)
    ]


def _energy_usage(rng: np.random.Generator, count: int, start: datetime) -> list[dict]:
    """AMI smart meters, 15-minute energy per household: a small night base load, a morning bump, the evening
    peak, and air conditioning on summer afternoons and evenings. Five meters per building."""
    buildings = _spread(stations("seoul_bike"), ENERGY_METERS // METERS_PER_BUILDING, offset=17)
    meter, times = _slots(count, ENERGY_METERS, start, timedelta(minutes=15))
    building = meter // METERS_PER_BUILDING
    hours = _local_hours(times + 450)
    fixed = np.random.default_rng(ENERGY_METERS)
    uses = np.array(["apartment", "multiFamily", "rowHouse", "officetel", "detached"])
    use = fixed.choice(len(uses), len(buildings), p=[0.6, 0.15, 0.1, 0.1, 0.05])[building]
    size = fixed.lognormal(0, 0.35, ENERGY_METERS)[meter] * np.where(uses[use] == "officetel", 0.6, 1.0)
    floor = fixed.integers(1, 25, ENERGY_METERS)[meter]
    register = fixed.uniform(4_000, 60_000, ENERGY_METERS)[meter]
    heat = np.clip((_season_temperature(times) - 22) / 5, 0, 1)
    cold = np.clip((5 - _season_temperature(times)) / 10, 0, 1)
    profile = 0.05 + 0.08 * _daily(hours, 7.5, 1) + 0.04 * _daily(hours, 13, 3) + 0.22 * _daily(hours, 20.5, 2.2)
    profile *= 1 + 0.9 * heat * (_daily(hours, 16, 3) + _daily(hours, 22, 3)) + 0.2 * cold
    energy = np.round(size * profile * rng.gamma(6, 1 / 6, count), 3)
    peak = np.round(energy * 4 * rng.uniform(1.2, 2.6, count), 2)
    total = np.round(register + (times + 900 - 1.7e9) / 86400 * 9 * size, 2)
    return [
        {
            "id": f"urn:ngsi-ld:EnergyUsageObserved:ami-{7_100_000 + int(meter[i])}",
            "type": "EnergyUsageObserved",
            "householdId": f"bldg-{int(building[i]):04d}-{int(floor[i])}{int(meter[i]) % 4 + 1:02d}",
            "buildingId": f"bldg-{int(building[i]):04d}",
            "buildingUse": str(uses[use[i]]),
            "district": buildings[building[i]]["district"],
            "dateObservedFrom": _iso(times[i]),
            "dateObservedTo": _iso(times[i] + 900),
            "activeEnergyImport": float(energy[i]),
            "peakPower": float(peak[i]),
            "totalActiveEnergyImport": float(total[i]),
        }
        for i in range(count)
    ]


GENERATORS: dict[str, Callable[[np.random.Generator, int, datetime], list[dict]]] = {
    "air_quality": _air_quality,
    "traffic_flow": _traffic_flow,
    "parking_spots": _parking_spots,
    "mobility_trips": _mobility_trips,
    "kr_air_quality": _kr_air_quality,
    "weather_observed": _weather_observed,
    "noise_level": _noise_level,
    "streetlights": _streetlights,
    "waste_containers": _waste_containers,
    "water_quality": _water_quality,
    "bike_stations": _bike_stations,
    "bike_rentals_hourly": _bike_rentals_hourly,
    "care_sensors": _care_sensors,
    "energy_usage": _energy_usage,
}

# A realistic hour of each feed, for the demo.
HOURLY_VOLUME = {
    "air_quality": 40,
    "kr_air_quality": 40,
    "traffic_flow": 2400,
    "parking_spots": 3000,
    "mobility_trips": 1500,
    "weather_observed": WEATHER_SITES * 6,
    "noise_level": NOISE_SITES * 6,
    "streetlights": STREETLIGHTS * 4,
    "waste_containers": WASTE_CONTAINERS,
    "water_quality": len(stations("seoul_waterside")) * 4,
    "bike_stations": 1460,  # one poll of every station
    "bike_rentals_hourly": 1,
    "care_sensors": CARE_HOUSEHOLDS * 6,
    "energy_usage": ENERGY_METERS * 4,
}

# What each bad kind does to a record: (field to break, replacement). None = remove the field.
_BREAKS = {
    "out_of_range": {
        "air_quality": ("pm10", 5000.0),
        "kr_air_quality": ("pm10Value", "5000"),
        "traffic_flow": ("intensity", -5),
        "parking_spots": ("location", {"type": "Point", "coordinates": [400.0, 37.5]}),
        "mobility_trips": ("distance", -10.0),
        "weather_observed": ("temperature", 85.0),
        "noise_level": ("LAeq", 180.0),
        "streetlights": ("powerFactor", 1.8),
        "waste_containers": ("fillingLevel", 1.6),
        "water_quality": ("pH", 15.2),
        "bike_stations": ("parkingBikeTotCnt", "-3"),
        "bike_rentals_hourly": ("Rented Bicycle Count", "-12"),
        "care_sensors": ("motionCount", -1),
        "energy_usage": ("activeEnergyImport", -0.4),
    },
    "missing_field": {
        "air_quality": ("dateObserved", None),
        "kr_air_quality": ("dataTime", None),
        "traffic_flow": ("intensity", None),
        "parking_spots": ("status", None),
        "mobility_trips": ("riderId", None),
        "weather_observed": ("dateObserved", None),
        "noise_level": ("LAeq", None),
        "streetlights": ("status", None),
        "waste_containers": ("location", None),
        "water_quality": ("dateObserved", None),
        "bike_stations": ("stationId", None),
        "bike_rentals_hourly": ("Rented Bicycle Count", None),
        "care_sensors": ("householdId", None),
        "energy_usage": ("activeEnergyImport", None),
    },
    "wrong_type": {
        "air_quality": ("pm25", "n/a"),
        "kr_air_quality": ("no2Value", "n/a"),
        "traffic_flow": ("occupancy", "high"),
        "parking_spots": ("location", "here"),
        "mobility_trips": ("fare", "free"),
        "weather_observed": ("temperature", "warm"),
        "noise_level": ("LAeq", "loud"),
        "streetlights": ("powerConsumption", "n/a"),
        "waste_containers": ("fillingLevel", "half"),
        "water_quality": ("O2", "n/a"),
        "bike_stations": ("rackTotCnt", "many"),
        "bike_rentals_hourly": ("Temperature(°C)", "n/a"),
        "care_sensors": ("powerConsumption", "high"),
        "energy_usage": ("activeEnergyImport", "lots"),
    },
    "unknown_value": {
        "air_quality": ("airQualityLevel", "smoky"),
        "kr_air_quality": ("khaiGrade", "9"),
        "traffic_flow": ("laneDirection", "up"),
        "parking_spots": ("status", "maybe"),
        "mobility_trips": ("vehicleType", "horse"),
        "noise_level": ("sonometerClass", "3"),
        "streetlights": ("powerState", "flickering"),
        "waste_containers": ("status", "overflowing"),
        "bike_rentals_hourly": ("Seasons", "Monsoon"),
        "care_sensors": ("alertStatus", "panic"),
        "energy_usage": ("buildingUse", "castle"),
    },
}


def bad_kinds(dataset_id: str) -> tuple[str, ...]:
    """The bad kinds that apply to a feed (``unknown_value`` needs a column with allowed values)."""
    return tuple(k for k in BAD_KINDS if k == "malformed_json" or dataset_id in _BREAKS[k])


def _break(entity: dict, dataset_id: str, kind: str) -> bytes:
    if kind == "malformed_json":
        return json.dumps(entity, ensure_ascii=False).encode()[:-7]
    field_name, replacement = _BREAKS[kind][dataset_id]
    broken = dict(entity)
    if replacement is None:
        broken.pop(field_name, None)
    else:
        broken[field_name] = replacement
    return json.dumps(broken, ensure_ascii=False).encode()


def default_start(contract: Contract | None, now: datetime | None = None) -> datetime:
    """The start of the last full hour: a demo hour that has just happened."""
    now = now or datetime.now(UTC)
    return now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)


def _span(dataset_id: str, count: int) -> timedelta:
    """How much time ``count`` readings of a feed cover (sites report once per cadence)."""
    sites_and_cadence = {
        "air_quality": (len(stations("airkorea_seoul")), timedelta(hours=1)),
        "traffic_flow": (TRAFFIC_SITES, timedelta(minutes=5)),
        "weather_observed": (WEATHER_SITES, timedelta(minutes=10)),
        "noise_level": (NOISE_SITES, timedelta(minutes=10)),
        "streetlights": (STREETLIGHTS, timedelta(minutes=15)),
        "waste_containers": (WASTE_CONTAINERS, timedelta(hours=1)),
        "water_quality": (len(stations("seoul_waterside")), timedelta(minutes=15)),
        "bike_rentals_hourly": (1, timedelta(hours=1)),
        "care_sensors": (CARE_HOUSEHOLDS, timedelta(minutes=10)),
        "energy_usage": (ENERGY_METERS, timedelta(minutes=15)),
    }
    if dataset_id not in sites_and_cadence:
        return timedelta(hours=1)
    sites, cadence = sites_and_cadence[dataset_id]
    return max(timedelta(hours=1), -(-count // sites) * cadence)


def _default_first(dataset_id: str, count: int) -> datetime:
    """Readings end in the last full hour: a big count reaches back in time, never into the future."""
    last_hour = default_start(None)
    return last_hour + timedelta(hours=1) - _span(dataset_id, count)


def simulate(
    contract: Contract, count: int, seed: int = 0, bad_ratio: float = 0.0, start: datetime | None = None
) -> tuple[list[Record], dict[str, int]]:
    """``count`` records for ``contract`` and how many of each bad kind were planted."""
    generator = GENERATORS.get(contract.id)
    if generator is None:
        raise CatalogError(
            f"no simulator for dataset {contract.id!r}",
            hint=f"simulated feeds: {', '.join(GENERATORS)}; replay real payloads with --file",
            status=400,
            code="no_simulator",
        )
    if not 0 <= bad_ratio <= 1:
        raise CatalogError("--bad-ratio must be between 0 and 1", status=400, code="bad_argument")
    rng = np.random.default_rng(seed)
    entities = generator(rng, count, start or _default_first(contract.id, count))
    bad_rng = np.random.default_rng(seed + 1)
    is_bad = bad_rng.random(count) < bad_ratio
    kinds = bad_rng.choice(bad_kinds(contract.id), count)
    planted: dict[str, int] = {}
    records = []
    for i, entity in enumerate(entities):
        if is_bad[i]:
            kind = str(kinds[i])
            planted[kind] = planted.get(kind, 0) + 1
            value = _break(entity, contract.id, kind)
        else:
            value = json.dumps(entity, ensure_ascii=False).encode()
        key = entity.get("id") or entity.get("stationId") or entity.get("stationName") or ""
        records.append(Record(str(key).encode(), value))
    return records, planted
