"""The safe zone end to end: state and migrations, people and keys, projects, analysis, export, audit."""

from __future__ import annotations

import csv
import io
import json

import sqlalchemy as sa

from serving.safezone import audit, db
from serving.safezone.auth import hash_key
from tests.safezone.conftest import A, B, district_of


def test_migrations_are_versioned_and_idempotent(settings):
    engine = db.engine_for(settings)
    assert db.schema_version(engine) == len(db.MIGRATIONS)
    assert db.migrate(engine) == []  # nothing left to apply
    with engine.connect() as conn:
        versions = [r[0] for r in conn.exec_driver_sql("SELECT version FROM schema_migrations ORDER BY version")]
    assert versions == [v for v, _, _ in db.MIGRATIONS]
    assert (settings.state / "safezone.db").exists()


def test_keys_are_stored_hashed_and_bootstrap_prints_one_once(settings, capsys):
    from infra.cli import main

    assert main(["admin", "bootstrap"]) == 0
    key = capsys.readouterr().out.strip().splitlines()[-1]
    assert main(["admin", "bootstrap"]) != 0
    with db.engine_for(settings).connect() as conn:
        stored = [r[0] for r in conn.exec_driver_sql("SELECT hash FROM keys")]
    assert stored == [hash_key(key)] and key not in stored


def test_apply_approve_query_export_download_and_audit(zone, capsys):
    project, key = zone.project()
    a = district_of(A)
    body = {
        "group_by": ["start_district", "mode"],
        "measures": ["persons", "count", {"fn": "sum", "column": "fare_krw"}],
    }
    answer = zone.ok(zone.ask(project, key, body))
    assert answer["columns"] == ["start_district", "mode", "persons", "count", "sum_fare_krw"]
    cells = {(r[0], r[1]): r[2:] for r in answer["rows"]}
    assert cells[(a, "bike")][:2] == [30, 60]
    assert cells[(a, "drt")] == [None, None, None]  # 3 riders: suppressed
    reasons = {(s["cell"]["start_district"], s["cell"]["mode"]): s["reason"] for s in answer["suppressed"]}
    assert reasons[(a, "drt")] == "persons_below_min"
    assert "complementary" in reasons.values()  # the line of district A would reveal the DRT cell otherwise
    assert zone.ok(zone.get(f"/queries/{answer['id']}", key)) == answer

    # the same question in SQL means the same request, so the same answer
    sql = (
        "SELECT start_district, mode, count(DISTINCT rider_id), count(*), sum(fare_krw) FROM mobility_trips "
        "GROUP BY start_district, mode"
    )
    again = zone.ok(zone.ask(project, key, {"sql": sql}))
    assert again["rows"] == answer["rows"] and again["suppressed"] == answer["suppressed"]

    export = zone.ok(zone.post(f"/queries/{answer['id']}/export", key))
    assert export["status"] == "pending"
    assert zone.get(f"/exports/{export['id']}/download", key).status_code == 409  # not reviewed yet
    pending = zone.ok(zone.get("/exports", zone.keys["reviewer"], status="pending"))
    assert [e["id"] for e in pending["exports"]] == [export["id"]]
    assert zone.post(f"/exports/{export['id']}/approve", zone.keys["reviewer"], {}).status_code == 400  # no reason
    zone.ok(zone.post(f"/exports/{export['id']}/approve", zone.keys["reviewer"], {"reason": "aggregates only"}))
    download = zone.get(f"/exports/{export['id']}/download", key)
    assert download.status_code == 200 and download.headers["content-type"].startswith("text/csv")
    table = list(csv.reader(io.StringIO(download.text)))
    assert table[0] == answer["columns"]
    for row in table[1:]:
        for value in row[2:4]:
            assert value == "" or (int(value) % 5 == 0 and int(value) > 7)

    heads = zone.ok(zone.get("/audit/head", None))
    assert heads["seq"] > 10
    log = [json.loads(line) for line in zone.get("/audit", zone.admin).text.splitlines()]
    asked = [e for e in log if e["action"].endswith("/queries") and e["decision"] == "answered"]
    assert asked and asked[0]["sql"].startswith("WITH base AS") and asked[0]["answer_hash"]
    assert json.loads(asked[0]["suppressed"])
    assert audit.verify(log, [heads]) == []

    from infra.cli import main

    assert main(["audit", "verify", "--head", f"{heads['seq']}:{heads['hash']}"]) == 0
    assert "ok:" in capsys.readouterr().out


def test_projects_are_validated_listed_and_decided_once(zone):
    body = {
        "org": zone.orgs["acme"],
        "datasets": ["mobility_trips"],
        "columns": ["mode"],
        "purpose": "p",
        "analysts": [zone.users["analyst"]],
        "days": 26,
    }
    assert zone.post("/projects", zone.keys["applicant"], body).status_code == 400  # longer than 25 days
    assert (
        zone.post("/projects", zone.keys["applicant"], {**body, "days": 5, "columns": ["rider_id"]}).status_code == 400
    )
    assert (
        zone.post("/projects", zone.keys["applicant"], {**body, "days": 5, "datasets": ["air_quality"]}).status_code
        == 400
    )
    assert zone.post("/projects", zone.keys["other_applicant"], {**body, "days": 5}).status_code == 403
    assert zone.post("/projects", zone.keys["analyst"], {**body, "days": 5}).status_code == 403
    project = zone.ok(zone.post("/projects", zone.keys["applicant"], {**body, "days": 5}))
    assert zone.post(f"/projects/{project['id']}/approve", zone.keys["reviewer"], {"reason": "x"}).status_code == 403
    rejected = zone.ok(zone.post(f"/projects/{project['id']}/reject", zone.admin, {"reason": "purpose too vague"}))
    assert rejected["status"] == "rejected" and rejected["reason"] == "purpose too vague"
    assert zone.post(f"/projects/{project['id']}/approve", zone.admin, {"reason": "x"}).status_code == 409
    assert [p["id"] for p in zone.ok(zone.get("/projects", zone.keys["applicant"]))["projects"]] == [project["id"]]
    assert zone.ok(zone.get("/projects", zone.keys["other_applicant"]))["projects"] == []
    assert zone.get(f"/projects/{project['id']}", zone.keys["other_applicant"]).status_code == 404
    # a query key for a project that is not approved
    response = zone.post("/keys", zone.keys["analyst"], {"user": zone.users["analyst"], "project": project["id"]})
    assert response.status_code == 409


def test_expiry_ends_access_and_deletes_answers(zone):
    project, key = zone.project()
    answer = zone.ok(zone.ask(project, key, {"group_by": ["mode"], "measures": ["persons"]}))
    with db.engine_for(zone.settings).begin() as conn:
        conn.execute(
            sa.text("UPDATE projects SET expires_at = '2000-01-01T00:00:00.000000Z' WHERE id = :p"), {"p": project}
        )
    assert zone.ask(project, key, {"group_by": ["mode"], "measures": ["persons"]}).status_code == 410
    with db.engine_for(zone.settings).connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM answers").scalar_one() == 0
    assert zone.get(f"/queries/{answer['id']}", zone.keys["reviewer"]).status_code == 404
    assert zone.ok(zone.get(f"/projects/{project}", zone.admin))["status"] == "expired"


def test_dominance_suppresses_a_sum_one_person_dominates(zone):
    project, key = zone.project()
    body = {"group_by": ["start_district"], "measures": ["persons", {"fn": "sum", "column": "fare_krw"}], "where": []}
    answer = zone.ok(zone.ask(project, key, body))
    # district A holds the canary's outlier fare, over half of A's fares: suppressed; B, the only other cell of
    # the line, would give A away as the total minus B: suppressed as its complement
    reasons = {s["cell"]["start_district"]: s["reason"] for s in answer["suppressed"]}
    assert reasons == {district_of(A): "dominance", district_of(B): "complementary"}
    assert all(r[1:] == [None, None] for r in answer["rows"])
    # counts alone are not dominated
    counts = zone.ok(zone.ask(project, key, {"group_by": ["start_district"], "measures": ["persons"]}))
    assert {r[0]: r[1] for r in counts["rows"]} == {district_of(A): 45, district_of(B): 25}
    sums = zone.ok(
        zone.ask(project, key, {"where": [{"column": "mode", "op": "=", "value": "drt"}], "measures": ["count"]})
    )
    assert sums["rows"] == [[None]] and sums["suppressed"][0]["reason"] == "persons_below_min"


def test_disclosure_rules_unit():
    import pyarrow as pa

    from infra.settings import Settings
    from serving.safezone.compile import AggRequest, Measure
    from serving.safezone.disclosure import control

    request = AggRequest("mobility_trips", ("d",), (Measure("persons"), Measure("sum", "x")))
    table = pa.Table.from_pylist(
        [
            {
                "d": "a",
                "_rows": 30,
                "_persons": 20,
                "_sum_x": 100.0,
                "_n_x": 30,
                "_abs_x": 100.0,
                "_top_x": [60.0, 5.0],
            },
            {
                "d": "b",
                "_rows": 30,
                "_persons": 20,
                "_sum_x": 100.0,
                "_n_x": 30,
                "_abs_x": 100.0,
                "_top_x": [40.0, 30.0],
            },
            {
                "d": "c",
                "_rows": 40,
                "_persons": 20,
                "_sum_x": 100.0,
                "_n_x": 40,
                "_abs_x": 100.0,
                "_top_x": [10.0, 9.0],
            },
            {
                "d": "e",
                "_rows": 50,
                "_persons": 20,
                "_sum_x": 100.0,
                "_n_x": 50,
                "_abs_x": 100.0,
                "_top_x": [10.0, 9.0],
            },
            {"d": "f", "_rows": 3, "_persons": 3, "_sum_x": 9.0, "_n_x": 3, "_abs_x": 9.0, "_top_x": [3.0, 3.0]},
        ]
    )
    answer = control(table, request, Settings())
    reasons = {s["cell"]["d"]: s["reason"] for s in answer.suppressed}
    assert reasons == {"a": "dominance", "b": "dominance", "f": "persons_below_min"}
    # two suppressed cells, one of them with ≥ 10 persons: the residual of the margin spans enough persons
    single = control(table.slice(2, 3), request, Settings())
    assert {s["cell"]["d"]: s["reason"] for s in single.suppressed} == {"f": "persons_below_min", "c": "complementary"}


def test_a_dataset_with_nothing_landed_answers_empty(zone):
    body = {
        "org": zone.orgs["acme"],
        "datasets": ["care_sensors", "energy_usage"],
        "columns": ["district", "resident_age", "power_w", "energy_kwh"],
        "purpose": "Care and energy by district",
        "analysts": [zone.users["analyst"]],
        "days": 3,
    }
    project = zone.ok(zone.post("/projects", zone.keys["applicant"], body))
    assert project["columns"] == {
        "care_sensors": ["district", "resident_age_band", "power_w"],
        "energy_usage": ["district", "energy_kwh"],
    }
    zone.ok(zone.post(f"/projects/{project['id']}/approve", zone.admin, {"reason": "ok"}))
    key = zone.ok(zone.post("/keys", zone.keys["analyst"], {"user": zone.users["analyst"], "project": project["id"]}))
    ask = {"dataset": "care_sensors", "group_by": ["resident_age_band"], "measures": ["persons", "mean"]}
    assert zone.ask(project["id"], key["key"], ask).status_code == 400  # mean of what
    ask["measures"] = ["persons", {"fn": "mean", "column": "power_w"}]
    assert zone.ok(zone.ask(project["id"], key["key"], ask))["rows"] == []
    total = zone.ok(zone.ask(project["id"], key["key"], {"sql": "SELECT count(*) FROM energy_usage"}))
    assert total["rows"] == [[None]] and total["suppressed"][0]["reason"] == "persons_below_min"
    # no dataset named, two granted: which one?
    assert zone.ask(project["id"], key["key"], {"measures": ["count"]}).status_code == 403


def test_refusals_are_audited_too(zone):
    project, key = zone.project()
    assert zone.ask(project, None, {"measures": ["count"]}).status_code == 401
    assert zone.ask(project, key, {"sql": "SELECT * FROM mobility_trips"}).status_code == 400
    assert zone.ask(project, key, {"sql": 5}).status_code == 400  # not even a valid body
    log = [json.loads(line) for line in zone.get("/audit", zone.admin).text.splitlines()]
    queries = [e for e in log if e["action"] == f"POST /api/v1/safezone/projects/{project}/queries"]
    assert [e["decision"] for e in queries] == [
        "refused 401 unauthorized",
        "refused 400 query_refused",
        "refused 400 bad_request",
    ]
    assert queries[0]["actor"] is None and queries[1]["actor"] == zone.users["analyst"]
    assert "SELECT * FROM mobility_trips" in queries[1]["request"] and queries[1]["sql"] is None


def test_complementary_suppression_along_both_dimensions():
    import pyarrow as pa

    from infra.settings import Settings
    from serving.safezone.compile import AggRequest, Measure
    from serving.safezone.disclosure import control

    request = AggRequest("mobility_trips", ("r", "c"), (Measure("persons"),))
    grid = {("x", "p"): 3, ("x", "q"): 40, ("x", "s"): 50, ("y", "p"): 30, ("y", "q"): 20, ("y", "s"): 60}
    table = pa.Table.from_pylist([{"r": r, "c": c, "_rows": n, "_persons": n} for (r, c), n in grid.items()])
    answer = control(table, request, Settings())
    hidden = {(s["cell"]["r"], s["cell"]["c"]): s["reason"] for s in answer.suppressed}
    assert hidden[("x", "p")] == "persons_below_min"
    # row x needs a second cell hidden (x, q: fewest rows), column p too (y, p), and then column q (y, q)
    assert hidden == {
        ("x", "p"): "persons_below_min",
        ("x", "q"): "complementary",
        ("y", "p"): "complementary",
        ("y", "q"): "complementary",
    }
    for line in (("x",), ("y",)):  # every line with a hidden cell has two, one of them of ≥ 10 persons
        cells = [k for k in hidden if k[0] == line[0]]
        assert len(cells) >= 2 and any(grid[k] >= 10 for k in cells)
