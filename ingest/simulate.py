"""Simulated city feeds: deterministic under a seed, at real station locations, following daily curves.

Readings are NGSI-LD keyValues entities, the form a FIWARE IoT agent publishes. Values follow the contract's
ranges; a share ``bad_ratio`` of records is deliberately broken in one of the named ``BAD_KINDS`` so that the
quarantine path is exercised with every demo and test.
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


GENERATORS: dict[str, Callable[[np.random.Generator, int, datetime], list[dict]]] = {
    "air_quality": _air_quality,
    "traffic_flow": _traffic_flow,
    "parking_spots": _parking_spots,
    "mobility_trips": _mobility_trips,
    "kr_air_quality": _kr_air_quality,
}

# A realistic hour of each feed, for the demo.
HOURLY_VOLUME = {
    "air_quality": 40,
    "kr_air_quality": 40,
    "traffic_flow": 2400,
    "parking_spots": 3000,
    "mobility_trips": 1500,
}

# What each bad kind does to a record: (field to break, replacement). None = remove the field.
_BREAKS = {
    "out_of_range": {
        "air_quality": ("pm10", 5000.0),
        "kr_air_quality": ("pm10Value", "5000"),
        "traffic_flow": ("intensity", -5),
        "parking_spots": ("location", {"type": "Point", "coordinates": [400.0, 37.5]}),
        "mobility_trips": ("distance", -10.0),
    },
    "missing_field": {
        "air_quality": ("dateObserved", None),
        "kr_air_quality": ("dataTime", None),
        "traffic_flow": ("intensity", None),
        "parking_spots": ("status", None),
        "mobility_trips": ("riderId", None),
    },
    "wrong_type": {
        "air_quality": ("pm25", "n/a"),
        "kr_air_quality": ("no2Value", "n/a"),
        "traffic_flow": ("occupancy", "high"),
        "parking_spots": ("location", "here"),
        "mobility_trips": ("fare", "free"),
    },
    "unknown_value": {
        "air_quality": ("airQualityLevel", "smoky"),
        "kr_air_quality": ("khaiGrade", "9"),
        "traffic_flow": ("laneDirection", "up"),
        "parking_spots": ("status", "maybe"),
        "mobility_trips": ("vehicleType", "horse"),
    },
}


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
    kinds = bad_rng.choice(BAD_KINDS, count)
    planted: dict[str, int] = {}
    records = []
    for i, entity in enumerate(entities):
        if is_bad[i]:
            kind = str(kinds[i])
            planted[kind] = planted.get(kind, 0) + 1
            value = _break(entity, contract.id, kind)
        else:
            value = json.dumps(entity, ensure_ascii=False).encode()
        records.append(Record(str(entity.get("id") or entity.get("stationName")).encode(), value))
    return records, planted
