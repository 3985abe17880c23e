"""The attack suite: each attempt is refused, and no data leaks. Canaries are planted in the safe-zone data (a
rider id, an outlier fare and distance); none may appear in any response body, header, error, log line or
audit entry."""

from __future__ import annotations

import json
import logging
import re
import time

import pytest
import sqlalchemy as sa

from catalog import get_contract
from serving.safezone import audit, db, sandbox
from tests.safezone.conftest import CANARY_DISTANCE, CANARY_FARE, CANARY_RIDER, A, district_of

# the numbers stand alone (not inside a hex digest or an id, where five digits turn up by chance)
CANARIES = [
    re.compile(re.escape(CANARY_RIDER)),
    *(re.compile(rf"(?<![0-9A-Za-z_]){n}(?![0-9A-Za-z_])") for n in (CANARY_FARE, int(CANARY_DISTANCE))),
    re.compile(re.escape(f"{CANARY_FARE:,}")),
]


def leaked(text: str) -> list[str]:
    return [c.pattern for c in CANARIES if c.search(text)]


def assert_clean(response) -> None:
    assert not leaked(response.text + json.dumps(dict(response.headers)))


@pytest.fixture(autouse=True)
def no_canary_in_logs(caplog):
    caplog.set_level(logging.DEBUG)
    yield
    assert not leaked(caplog.text)


@pytest.fixture
def project(zone):
    pid, key = zone.project(columns=("mode", "start_lon", "fare_krw", "distance_m", "started_at"))
    yield pid, key
    # nothing the attacks did left a canary in the audit log either
    with db.engine_for(zone.settings).connect() as conn:
        text = json.dumps(audit.entries(conn), default=str, ensure_ascii=False)
    assert not leaked(text)


ATTACKS = [
    # reading files
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT count(*) FROM read_text('/etc/passwd')",
    "SELECT count(*) FROM glob('/*')",
    "SELECT count(*) FROM read_parquet('lake/clean/mobility_trips/*/*.parquet')",
    "SELECT count(*) FROM 'lake/clean/mobility_trips/date=2026-11-20/t+0+000000000000-000000000072.parquet'",
    # writing
    "COPY mobility_trips TO '/tmp/out.csv'",
    "COPY (SELECT * FROM mobility_trips) TO '/tmp/out.parquet' (FORMAT parquet)",
    "EXPORT DATABASE '/tmp/exported'",
    # other databases and extensions, settings
    "ATTACH '/tmp/other.db' AS other",
    "INSTALL httpfs",
    "LOAD httpfs",
    "SET enable_external_access = true",
    "SET lock_configuration = false",
    "RESET threads",
    "PRAGMA database_list",
    "CALL pragma_version()",
    # raw rows
    "SELECT * FROM mobility_trips",
    "SELECT mode FROM mobility_trips",
    "SELECT count(*) FROM mobility_trips USING SAMPLE 10",
    "SELECT count(*) FROM mobility_trips TABLESAMPLE 10%",
    "SELECT rider_id, count(*) FROM mobility_trips GROUP BY rider_id",
    "SELECT fare_krw, count(*) FROM mobility_trips GROUP BY fare_krw",
    "SELECT mode, row_number() OVER () FROM mobility_trips GROUP BY mode",
    "SELECT mode, sum(fare_krw) OVER (PARTITION BY mode) FROM mobility_trips GROUP BY mode",
    "SELECT mode, count(*) FROM mobility_trips GROUP BY mode ORDER BY 2 LIMIT 1",
    "SELECT mode, count(*) FROM mobility_trips GROUP BY mode HAVING count(*) < 3",
    "SELECT DISTINCT mode, count(*) FROM mobility_trips GROUP BY mode",
    "SELECT count(*) FROM (SELECT * FROM mobility_trips)",
    "WITH x AS (SELECT * FROM mobility_trips) SELECT count(*) FROM x",
    # raw values inside aggregates
    "SELECT mode, string_agg(rider_id, ',') FROM mobility_trips GROUP BY mode",
    "SELECT mode, list(rider_id) FROM mobility_trips GROUP BY mode",
    "SELECT mode, array_agg(fare_krw) FROM mobility_trips GROUP BY mode",
    "SELECT mode, min(fare_krw) FROM mobility_trips GROUP BY mode",
    "SELECT mode, max(distance_m) FROM mobility_trips GROUP BY mode",
    "SELECT mode, arg_max(rider_id, fare_krw) FROM mobility_trips GROUP BY mode",
    "SELECT mode, count(DISTINCT fare_krw) FROM mobility_trips GROUP BY mode",
    "SELECT mode, sum(fare_krw * 1000) FROM mobility_trips GROUP BY mode",
    "SELECT mode, avg(fare_krw) FILTER (WHERE rider_id = 'x') FROM mobility_trips GROUP BY mode",
    "SELECT mode, sum(DISTINCT fare_krw) FROM mobility_trips GROUP BY mode",
    "SELECT mode, count(rider_id) FROM mobility_trips GROUP BY mode",
    # query smuggling
    "SELECT * FROM query('SELECT * FROM mobility_trips')",
    "SELECT count(*) FROM query_table('mobility_trips')",
    "SELECT json_execute_serialized_sql('{}')",
    "SELECT mode, count(*) FROM mobility_trips GROUP BY mode; SELECT * FROM mobility_trips",
    # errors that echo values, and filters that isolate a person
    "SELECT mode, count(*) FROM mobility_trips WHERE error(rider_id) GROUP BY mode",
    "SELECT mode, count(*) FROM mobility_trips WHERE CAST(rider_id AS INTEGER) = 1 GROUP BY mode",
    "SELECT mode, sum(CAST(rider_id AS INTEGER)) FROM mobility_trips GROUP BY mode",
    "SELECT mode, count(*) FROM mobility_trips WHERE rider_id = 'c4nary' GROUP BY mode",
    "SELECT mode, count(*) FROM mobility_trips WHERE fare_krw > 98000 GROUP BY mode",
    "SELECT mode, count(*) FROM mobility_trips WHERE mode = 'bike' OR 1 = 1 GROUP BY mode",
    "SELECT mode, count(*) FROM mobility_trips WHERE mode IN (SELECT mode FROM mobility_trips) GROUP BY mode",
    "SELECT mode, count(*) FROM mobility_trips WHERE mode = mode GROUP BY mode",
    "SELECT count(*) FROM mobility_trips WHERE started_at > 'not a time'",
    # runaway queries
    "WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r) SELECT count(*) FROM r",
    "SELECT count(*) FROM mobility_trips a, mobility_trips b, mobility_trips c",
    "SELECT count(*) FROM mobility_trips CROSS JOIN range(1000000000)",
    "SELECT count(*) FROM range(1000000000000)",
    # columns not granted, nonsense
    "SELECT ended_at, count(*) FROM mobility_trips GROUP BY ended_at",
    "SELECT mobility_trips.mode, count(*) FROM mobility_trips GROUP BY mobility_trips.mode",
    "SELECT main.mode, count(*) FROM main.mobility_trips GROUP BY 1",
    "DROP TABLE t",
    "SELECT count(*) FROM mobility_trips WHERE " + " AND ".join(["mode = 'bike'"] * 1500),
    "SELECT count(*) FROM mobility_trips WHERE " + "(" * 3000 + "mode = 'bike'" + ")" * 3000,
    "SELECT " + "-" * 5000 + "1",
    "",
    "SELEC",
]


@pytest.mark.parametrize("sql", ATTACKS)
def test_sql_attacks_are_refused_with_no_data(zone, project, sql):
    pid, key = project
    response = zone.ask(pid, key, {"sql": sql})
    assert response.status_code in (400, 403), response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] in ("query_refused", "not_granted", "bad_request")
    assert_clean(response)


STRUCTURED = [
    {"group_by": ["rider_id"], "measures": ["count"]},
    {"group_by": ["fare_krw"], "measures": ["count"]},
    {"group_by": ['mode" , rider_id --'], "measures": ["count"]},
    {"group_by": ["start_lon"], "measures": ["count"]},  # precise coordinates: only the district is a dimension
    {"group_by": ["mode"], "measures": [{"fn": "min", "column": "fare_krw"}]},
    {"group_by": ["mode"], "measures": [{"fn": "sum", "column": "rider_id"}]},
    {"group_by": ["mode"], "measures": [{"fn": "sum", "column": "ended_at"}]},
    {"group_by": ["mode"], "measures": [{"fn": "persons", "column": "fare_krw"}]},
    {"group_by": ["mode"], "measures": []},
    {"group_by": ["mode"], "measures": ["count"], "where": [{"column": "fare_krw", "op": ">", "value": 98000}]},
    {"group_by": ["mode"], "measures": ["count"], "where": [{"column": "rider_id", "op": "=", "value": "someone"}]},
    {"group_by": ["mode"], "measures": ["count"], "where": [{"column": "mode", "op": "like", "value": "%"}]},
    {"group_by": ["mode"], "measures": ["count"], "where": [{"column": "mode", "op": "=", "value": {"x": 1}}]},
    {"group_by": ["mode"], "measures": ["count"], "where": [{"column": "started_at", "op": ">", "value": "soon"}]},
    {"dataset": "energy_usage", "group_by": ["district"], "measures": ["count"]},
    {"dataset": "air_quality", "measures": ["count"]},
    {"sql": "SELECT count(*) FROM mobility_trips", "measures": ["count"]},
    {"measures": [{"fn": "sum", "column": ["fare_krw"]}]},
    {"measures": [{"fn": ["sum"], "column": "fare_krw"}]},
    {"measures": ["count"], "where": [{"column": ["mode"], "op": "=", "value": "bike"}]},
    {"measures": ["count"], "where": [{"column": "mode", "op": "in", "value": [["bike"]]}]},
    {"measures": ["count"], "where": [{"column": "mode", "op": "in", "value": []}]},
    {"measures": ["count"], "where": ["mode = 'bike'"]},
    {"measures": [7]},
]


@pytest.mark.parametrize("body", STRUCTURED)
def test_structured_attacks_are_refused(zone, project, body):
    pid, key = project
    response = zone.ask(pid, key, body)
    assert response.status_code in (400, 403), response.text
    assert_clean(response)


def test_another_projects_dataset_is_refused_403(zone, project):
    pid, key = project
    response = zone.ask(pid, key, {"sql": "SELECT district, count(*) FROM energy_usage GROUP BY district"})
    assert response.status_code == 403 and response.json()["error"]["code"] == "not_granted"


def test_a_small_cell_is_suppressed_and_its_values_never_shown(zone, project):
    pid, key = project
    for body in (
        {
            "sql": "SELECT count(*), count(DISTINCT rider_id), sum(fare_krw), avg(distance_m) FROM mobility_trips "
            "WHERE mode = 'drt'"
        },
        {"group_by": ["mode"], "measures": ["count", {"fn": "mean", "column": "fare_krw"}]},
    ):
        response = zone.ask(pid, key, body)
        answer = zone.ok(response)
        assert_clean(response)
        assert any(s["reason"] == "persons_below_min" for s in answer["suppressed"])
        for row in answer["rows"]:
            assert "drt" not in row or all(v is None for v in row[1:])


def test_a_differencing_pair_across_two_projects_is_refused(zone, project):
    pid, key = project
    a = district_of(A)
    first = zone.ask(
        pid, key, {"sql": f"SELECT count(DISTINCT rider_id) FROM mobility_trips WHERE start_district = '{a}'"}
    )
    assert zone.ok(first)["rows"] == [[45]]
    # another organisation asks for the same riders minus the three DRT riders (one of them the canary)
    other, other_key = zone.project(org="other", analyst="other_analyst")
    sql = (
        "SELECT count(DISTINCT rider_id), sum(fare_krw) FROM mobility_trips "
        f"WHERE start_district = '{a}' AND mode != 'drt'"
    )
    response = zone.ask(other, other_key, {"sql": sql})
    assert response.status_code == 409 and response.json()["error"]["code"] == "differencing_refused"
    assert_clean(response)
    structured = {
        "group_by": ["start_district"],
        "measures": ["persons"],
        "where": [{"column": "mode", "op": "in", "value": ["bike", "e_scooter"]}],
    }
    response = zone.ask(other, other_key, structured)
    assert response.status_code == 409
    # a question that differs by many persons is fine
    assert zone.ok(zone.ask(other, other_key, {"group_by": ["mode"], "measures": ["persons"]}))


def test_a_repeated_question_after_new_rows_is_guarded(zone, project, settings):
    pid, key = project
    assert zone.ok(zone.ask(pid, key, {"group_by": ["start_district"], "measures": ["persons"]}))
    with db.engine_for(settings).begin() as conn:  # as if 2 riders had landed since
        conn.execute(sa.text("UPDATE published_cells SET persons = persons + 2"))
    response = zone.ask(pid, key, {"group_by": ["start_district"], "measures": ["persons"]})
    assert response.status_code == 409


def test_a_runaway_query_is_cut_off_and_the_server_stays_healthy(zone, project, settings):
    pid, key = project
    table = sandbox.source(settings, get_contract("mobility_trips"), _full())
    for sql in (
        "WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r) SELECT count(*) FROM r",
        "SELECT count(*) FROM t a, t b, t c, t d, t e",
    ):
        started = time.monotonic()
        with pytest.raises(Exception) as caught:
            sandbox.run(settings, table, sql, [], timeout_s=0.5)
        assert caught.value.status == 504 and time.monotonic() - started < 5
    assert zone.client.get("/healthz").status_code == 200
    assert zone.ok(zone.ask(pid, key, {"group_by": ["mode"], "measures": ["count"]}))


def _full():
    from serving.safezone.compile import full_vocabulary

    return full_vocabulary(get_contract("mobility_trips"))


def test_the_sandbox_reads_no_file_and_cannot_be_unlocked(settings):
    table = sandbox.source(settings, get_contract("mobility_trips"), _full())
    for sql in (
        "SELECT * FROM read_csv('/etc/passwd')",
        f"SELECT * FROM read_parquet('{settings.lake}/clean/mobility_trips/*/*.parquet')",
        "SELECT * FROM glob('/*')",
        "COPY t TO '/tmp/cityhub-leak.csv'",
        "ATTACH '/tmp/cityhub-leak.db'",
        "INSTALL httpfs",
        "LOAD httpfs",
        "SET enable_external_access = true",
        "SET lock_configuration = false",
        "SELECT error(rider_id) FROM t",
        "SELECT CAST(rider_id AS INTEGER) FROM t",
        "SELECT * FROM settings_leak_variable",
        f"SELECT * FROM '{settings.lake}/clean/mobility_trips/date=2026-11-20'",
        "SELECT * FROM read_parquet('/etc/*')",
    ):
        with pytest.raises(sandbox.SandboxError) as caught:
            sandbox.run(settings, table, sql, [])
        assert CANARY_RIDER not in str(caught.value) and "passwd" not in str(caught.value)


def test_an_expired_project_answers_410(zone, project, settings):
    pid, key = project
    with db.engine_for(settings).begin() as conn:
        conn.execute(
            sa.text("UPDATE projects SET expires_at = '2000-01-01T00:00:00.000000Z' WHERE id = :p"), {"p": pid}
        )
    response = zone.ask(pid, key, {"group_by": ["mode"], "measures": ["count"]})
    assert response.status_code == 410


def test_missing_revoked_and_wrong_project_keys(zone, project):
    pid, key = project
    body = {"group_by": ["mode"], "measures": ["count"]}
    assert zone.ask(pid, None, body).status_code == 401
    assert zone.ask(pid, "csz_not-a-key", body).status_code == 401
    assert (
        zone.client.post(
            f"/api/v1/safezone/projects/{pid}/queries", json=body, headers={"Authorization": f"Basic {key}"}
        ).status_code
        == 401
    )
    assert zone.ask(pid, zone.keys["analyst"], body).status_code == 403  # personal key, not a query key
    other, other_key = zone.project(org="other", analyst="other_analyst")
    assert zone.ask(pid, other_key, body).status_code == 403  # bound to another project
    # a query key for a project one is not an analyst of
    response = zone.post("/keys", zone.keys["analyst2"], {"user": zone.users["analyst2"], "project": pid})
    assert response.status_code == 403
    issued = zone.ok(zone.post("/keys", zone.keys["analyst"], {"user": zone.users["analyst"], "project": pid}))
    assert (
        zone.client.delete(
            f"/api/v1/safezone/keys/{issued['id']}", headers={"Authorization": f"Bearer {zone.keys['analyst2']}"}
        ).status_code
        == 403
    )
    assert (
        zone.client.delete(
            f"/api/v1/safezone/keys/{issued['id']}", headers={"Authorization": f"Bearer {issued['key']}"}
        ).status_code
        == 200
    )
    response = zone.ask(pid, issued["key"], body)
    assert response.status_code == 401 and "revoked" in response.json()["error"]["message"]


def test_no_one_approves_their_own_export(zone, project, settings):
    pid, key = project
    answer = zone.ok(zone.ask(pid, key, {"group_by": ["mode"], "measures": ["persons"]}))
    export = zone.ok(zone.post(f"/queries/{answer['id']}/export", key))
    assert zone.post(f"/exports/{export['id']}/approve", key, {"reason": "mine"}).status_code == 403
    assert zone.post(f"/exports/{export['id']}/approve", zone.keys["analyst"], {"reason": "mine"}).status_code == 403
    assert zone.post(f"/exports/{export['id']}/approve", zone.admin, {"reason": "x"}).status_code == 403
    with db.engine_for(settings).begin() as conn:  # a reviewer who requested it themself
        conn.execute(sa.text("UPDATE exports SET requester_id = :u"), {"u": zone.users["reviewer"]})
    response = zone.post(f"/exports/{export['id']}/approve", zone.keys["reviewer"], {"reason": "mine"})
    assert response.status_code == 403 and "own" in response.json()["error"]["message"]
    assert zone.get(f"/exports/{export['id']}/download", key).status_code in (403, 409)
    zone.ok(zone.post(f"/exports/{export['id']}/reject", zone.keys["reviewer2"], {"reason": "not needed"}))
    assert zone.get(f"/exports/{export['id']}/download", zone.keys["reviewer2"]).status_code == 409


def _log(settings) -> list[dict]:
    with db.engine_for(settings).connect() as conn:
        return audit.entries(conn)


@pytest.mark.parametrize("tamper", ["edit", "remove", "reorder", "rewrite"])
def test_a_tampered_audit_log_is_detected(zone, project, settings, tamper, capsys):
    from infra.cli import main

    pid, key = project
    zone.ok(zone.ask(pid, key, {"group_by": ["mode"], "measures": ["persons"]}))
    head = zone.ok(zone.get("/audit/head", None))
    assert main(["audit", "verify", "--head", f"{head['seq']}:{head['hash']}"]) == 0
    log = _log(settings)
    victim = log[len(log) // 2]
    with db.engine_for(settings).begin() as conn:
        if tamper == "edit":
            conn.execute(sa.text("UPDATE audit SET decision = 'answered' WHERE seq = :s"), {"s": victim["seq"]})
        elif tamper == "remove":
            conn.execute(sa.text("DELETE FROM audit WHERE seq = :s"), {"s": victim["seq"]})
        elif tamper == "reorder":
            a, b = victim["seq"], victim["seq"] + 1
            conn.execute(sa.text("UPDATE audit SET seq = -1 WHERE seq = :a"), {"a": a})
            conn.execute(sa.text("UPDATE audit SET seq = :a WHERE seq = :b"), {"a": a, "b": b})
            conn.execute(sa.text("UPDATE audit SET seq = :b WHERE seq = -1"), {"b": b})
        else:  # an admin rewrites history from the victim on, consistently, hashes and head included
            prev = victim["prev"]
            for entry in log[log.index(victim) :]:
                entry = {**entry, "decision": "answered" if entry is victim else entry["decision"]}
                entry["actor"] = "nobody" if entry["seq"] == victim["seq"] else entry["actor"]
                digest = audit.entry_hash(prev, entry)
                conn.execute(
                    sa.text("UPDATE audit SET actor = :a, prev = :p, hash = :h WHERE seq = :s"),
                    {"a": entry["actor"], "p": prev, "h": digest, "s": entry["seq"]},
                )
                prev = digest
            conn.execute(sa.text("UPDATE audit_head SET hash = :h"), {"h": prev})
    capsys.readouterr()
    assert main(["audit", "verify", "--head", f"{head['seq']}:{head['hash']}"]) == 1
    assert "FAIL" in capsys.readouterr().out


def test_quarter_hour_cells_and_time_filters_go_through_the_guard(zone, project):
    pid, key = project
    by_time = {"group_by": ["started_at"], "measures": ["persons"]}
    answer = zone.ok(zone.ask(pid, key, by_time))
    assert answer["columns"] == ["started_at", "persons"]
    assert {r[0] for r in answer["rows"]} == {"2026-11-20T09:00:00Z", "2026-11-20T09:15:00Z", "2026-11-20T09:30:00Z"}
    # the first quarter hour minus the DRT riders: three persons fewer than a published cell
    sql = (
        "SELECT count(DISTINCT rider_id) FROM mobility_trips WHERE started_at = '2026-11-20T09:00:00Z' "
        "AND mode != 'drt'"
    )
    response = zone.ask(pid, key, {"sql": sql})
    assert response.status_code == 409, response.text
    wide = {**by_time, "where": [{"column": "started_at", "op": ">=", "value": "2026-11-20T09:15:00Z"}]}
    assert zone.ok(zone.ask(pid, key, wide))  # the same cells again: no difference
    with db.engine_for(zone.settings).connect() as conn:
        assert conn.exec_driver_sql("SELECT checks FROM guard_locks").scalar_one() == 2  # a refusal rolls back


def test_concurrent_differencing_requests_cannot_both_pass(zone, project):
    from concurrent.futures import ThreadPoolExecutor

    pid, key = project
    other, other_key = zone.project(org="other", analyst="other_analyst")
    a = district_of(A)
    whole = {"sql": f"SELECT count(DISTINCT rider_id) FROM mobility_trips WHERE start_district = '{a}'"}
    part = {
        "sql": f"SELECT count(DISTINCT rider_id) FROM mobility_trips WHERE start_district = '{a}' AND mode != 'drt'"
    }
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(zone.ask, pid, key, whole)
        second = pool.submit(zone.ask, other, other_key, part)
        codes = sorted([first.result().status_code, second.result().status_code])
    assert codes == [201, 409]


def test_the_canaries_are_in_the_data_and_would_be_seen(settings):
    """Control: the planted values are in the lake, and the checks above would catch them in a text."""
    import pyarrow.parquet as pq

    from ingest import lake

    rows = pq.read_table(lake.zone_files(settings.lake, "clean", "mobility_trips")).to_pylist()
    assert len(leaked(json.dumps(rows, default=str))) == 3
    assert leaked('{"rows": [["drt", 98765]]}') and leaked("87654.321") and not leaked("sha 0a98765f")
