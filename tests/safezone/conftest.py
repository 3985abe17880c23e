"""A safe zone over a small planted lake: riders in two districts, a small cell (3 DRT riders) and canaries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

from catalog import get_contract
from infra.settings import Settings
from ingest import lake
from serving.safezone import db
from transforms import geo

CANARY_RIDER = "c4nary-rider-5e1f0a77"
CANARY_FARE = 98_765
CANARY_DISTANCE = 87_654.321
A = (126.978, 37.5665)  # City Hall
B = (127.0276, 37.4979)  # Gangnam station
START = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def district_of(point: tuple[float, float]) -> str:
    return geo.district(pa.array([point[0]]), pa.array([point[1]]))[0].as_py()


def trips() -> list[dict]:
    out = []

    def trip(rider: str, mode: str, where, fare: int, distance: float, minute: int) -> None:
        at = START + timedelta(minutes=minute)
        out.append(
            {
                "trip_id": f"urn:ngsi-ld:MobilityTrip:{len(out)}",
                "rider_id": rider,
                "mode": mode,
                "started_at": at,
                "ended_at": at + timedelta(minutes=12),
                "start_lon": where[0],
                "start_lat": where[1],
                "end_lon": B[0],
                "end_lat": B[1],
                "distance_m": distance,
                "fare_krw": fare,
                "_pseudonym_key_version": "v1",
            }
        )

    for i in range(30):  # district A, bikes: 30 riders, 2 trips each
        for j in range(2):
            trip(f"bike-a-{i:03d}", "bike", A, 1000 + 10 * i, 1500.0 + i, i + j)
    for i in range(12):  # district A, scooters: 12 riders
        trip(f"scooter-a-{i:03d}", "e_scooter", A, 1500 + 5 * i, 2000.0 + i, i)
    for i in range(2):  # district A, DRT: 3 riders, one of them the canary with an outlier fare
        trip(f"drt-a-{i:03d}", "drt", A, 3000, 5000.0, i)
    trip(CANARY_RIDER, "drt", A, CANARY_FARE, CANARY_DISTANCE, 5)
    for i in range(25):  # district B, bikes: 25 riders
        trip(f"bike-b-{i:03d}", "bike", B, 1200 + 7 * i, 1800.0 + i, i)
    return out


def write_lake(settings: Settings) -> None:
    contract = get_contract("mobility_trips")
    rows = trips()
    for n, row in enumerate(rows):
        row.update({"_topic": "t", "_partition": 0, "_offset": n, "_kafka_ts": row["started_at"]})
    table = pa.Table.from_pylist(rows, schema=contract.schema)
    folder = lake.dataset_dir(settings.lake, "clean", contract.id) / "date=2026-11-20"
    lake.write_parquet_atomically(table, folder / lake.file_name("t", 0, 0, len(rows)))


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("CITYHUB_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CITYHUB_DATABASE_URL", raising=False)
    monkeypatch.delenv("CITYHUB_MIN_PERSONS", raising=False)
    settings = Settings()
    write_lake(settings)
    yield settings
    db.dispose_all()


class Zone:
    """A client and the people of a zone: an admin, two organisations with an applicant and analysts, and two
    reviewers."""

    def __init__(self, client: TestClient, settings: Settings):
        from serving.safezone.auth import bootstrap_admin

        self.client, self.settings = client, settings
        with db.engine_for(settings).begin() as conn:
            self.admin = bootstrap_admin(conn)["key"]
        self.orgs, self.users, self.keys = {}, {}, {}
        for org in ("acme", "other"):
            self.orgs[org] = self.ok(self.post("/orgs", self.admin, {"name": org}))["id"]
        for name, org, role in (
            ("applicant", "acme", "applicant"),
            ("analyst", "acme", "analyst"),
            ("analyst2", "acme", "analyst"),
            ("other_applicant", "other", "applicant"),
            ("other_analyst", "other", "analyst"),
            ("reviewer", "acme", "reviewer"),
            ("reviewer2", "other", "reviewer"),
        ):
            user = self.ok(self.post("/users", self.admin, {"org": self.orgs[org], "name": name, "role": role}))
            self.users[name] = user["id"]
            self.keys[name] = self.ok(self.post("/keys", self.admin, {"user": user["id"]}))["key"]

    def post(self, path: str, key: str | None, body: dict | None = None):
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return self.client.post(f"/api/v1/safezone{path}", json=body or {}, headers=headers)

    def get(self, path: str, key: str | None, **params):
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return self.client.get(f"/api/v1/safezone{path}", headers=headers, params=params)

    @staticmethod
    def ok(response) -> dict:
        assert response.status_code in (200, 201), response.text
        return response.json()

    def project(
        self, org: str = "acme", analyst: str = "analyst", columns=("mode", "start_lon", "fare_krw"), days: int = 10
    ) -> tuple[str, str]:
        """An approved project of ``org`` on mobility_trips and the analyst's query key."""
        applicant = "applicant" if org == "acme" else "other_applicant"
        body = {
            "org": self.orgs[org],
            "datasets": ["mobility_trips"],
            "columns": list(columns),
            "purpose": "Shared mobility use by district, for the city's bike lane plan",
            "analysts": [self.users[analyst]],
            "days": days,
        }
        project = self.ok(self.post("/projects", self.keys[applicant], body))
        assert project["status"] == "pending"
        self.ok(self.post(f"/projects/{project['id']}/approve", self.admin, {"reason": "purpose fits"}))
        key = self.ok(self.post("/keys", self.keys[analyst], {"user": self.users[analyst], "project": project["id"]}))
        return project["id"], key["key"]

    def ask(self, project: str, key: str, body: dict):
        return self.post(f"/projects/{project}/queries", key, body)


@pytest.fixture
def zone(settings: Settings):
    from serving.app import create_app

    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield Zone(client, settings)
