"""/records filters and cursors, /download in every format: real DuckDB over real lake files, real HTTP.

Most tests write the lake's clean files directly (chunk files named and typed as landing writes them), so that
the rows hold what the formats must survive: Korean text, quotes, commas, line breaks, nulls, ties in event
time, a character CP949 lacks. The abort test runs a real uvicorn server.
"""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import duckdb
import httpx
import pandas as pd
import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest
import uvicorn
from fastapi.testclient import TestClient

from catalog import get_contract
from infra.broker import free_port
from infra.settings import Settings
from ingest import lake
from serving import formats
from serving.app import create_app
from serving.db import Lake
from serving.query import RowQuery
from tests.serving.test_api import assert_error

DATASET = "air_quality"
URL = f"/api/v1/datasets/{DATASET}"
START = datetime(2026, 11, 20, 0, 0, tzinfo=UTC)
NAMES = ["강남구", "종로구", 'say "hi", then go', "two\r\nlines", None, "서초구"]
LEVELS = ["good", "moderate", None]


def make_rows(n: int, first: int = 0) -> list[dict]:
    rows = []
    for i in range(first, first + n):
        rows.append(
            {
                "station_id": f"urn:ngsi-ld:AirQualityObserved:ST-{i % 9}",
                "observed_at": START + timedelta(minutes=10 * (i // 3)),  # three rows per time: ties
                "lon": 126.90 + 0.01 * (i % 25),
                "lat": 37.45 + 0.01 * (i % 20),
                "station_name": NAMES[i % len(NAMES)],
                "pm10": None if i % 11 == 0 else round(5 + (i * 37) % 90 + 0.25, 2),
                "air_quality_index": None if i % 7 == 0 else (i * 13) % 300,
                "air_quality_level": LEVELS[i % len(LEVELS)],
            }
        )
    return rows


def write_chunk(settings: Settings, rows: list[dict], partition: int, first: int) -> Path:
    """One clean chunk file as landing names it, rows at offsets first, first+1, …"""
    contract = get_contract(DATASET)
    topic = settings.topic_for(DATASET)
    full = [
        {
            **dict.fromkeys(contract.schema.names),
            **row,
            "_topic": topic,
            "_partition": partition,
            "_offset": first + i,
            "_kafka_ts": row["observed_at"],
        }
        for i, row in enumerate(rows)
    ]
    day = rows[0]["observed_at"].date().isoformat()
    folder = lake.dataset_dir(settings.lake, "clean", DATASET) / f"date={day}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / lake.file_name(topic, partition, first, first + len(rows))
    pq.write_table(pa.Table.from_pylist(full, schema=contract.schema), path)
    return path


@pytest.fixture
def rows(settings) -> list[dict]:
    """120 readings in four chunk files over two partitions."""
    data = make_rows(120)
    for k in range(4):
        write_chunk(settings, data[k * 30 : (k + 1) * 30], partition=k % 2, first=(k // 2) * 30)
    return data


@pytest.fixture
def client(settings, rows):
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def all_records(client: TestClient, limit: int = 10_000, **params) -> list[dict]:
    """Every page, following the Link header; checks Link and next_cursor agree."""
    out: list[dict] = []
    response = client.get(f"{URL}/records", params={"limit": limit, **params})
    while True:
        assert response.status_code == 200, response.text
        page = response.json()
        out += page["rows"]
        link = response.headers.get("link")
        assert page["truncated"] == (page["next_cursor"] is not None) == (link is not None)
        if not link:
            return out
        assert link.endswith('>; rel="next"') and page["next_cursor"] in link
        response = client.get(link[1 : link.index(">")])


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# ---- filters --------------------------------------------------------------------------------------------------


def test_each_filter_kind_selects_the_rows_it_names(client, rows):
    everything = all_records(client)
    assert len(everything) == len(rows)
    times = [r["observed_at"] for r in everything]
    assert times == sorted(times)  # default order: event time, then lineage
    lineage = [(r["observed_at"], r["_topic"], r["_partition"], r["_offset"]) for r in everything]
    assert lineage == sorted(lineage) and len(set(lineage)) == len(lineage)

    since, until = START + timedelta(minutes=100), START + timedelta(minutes=300)
    ranged = all_records(client, since=since.isoformat(), until=until.isoformat())
    assert ranged and len(ranged) == sum(since <= r["observed_at"] < until for r in rows)

    gangnam = all_records(client, eq="station_name:강남구")
    assert gangnam and len(gangnam) == sum(r["station_name"] == "강남구" for r in rows)
    assert {r["station_name"] for r in gangnam} == {"강남구"}
    either = all_records(client, eq=["station_name:강남구", "station_name:서초구", "air_quality_level:good"])
    expected = [r for r in rows if r["station_name"] in ("강남구", "서초구") and r["air_quality_level"] == "good"]
    assert either and len(either) == len(expected)
    station = all_records(client, eq="station_id:urn:ngsi-ld:AirQualityObserved:ST-3")  # colons in the value
    assert len(station) == sum(r["station_id"].endswith("ST-3") for r in rows)
    assert len(all_records(client, eq="air_quality_index:13")) == sum(r["air_quality_index"] == 13 for r in rows)
    assert len(all_records(client, eq=f"observed_at:{iso(START)}")) == 3
    assert len(all_records(client, eq="_partition:1")) == 60

    boxed = all_records(client, bbox="126.95,37.50,127.05,37.60")
    assert boxed and len(boxed) == sum(126.95 <= r["lon"] <= 127.05 and 37.50 <= r["lat"] <= 37.60 for r in rows)

    narrow = all_records(client, fields="observed_at,pm10")
    assert narrow and all(list(r) == ["observed_at", "pm10"] for r in narrow)

    by_pm10 = all_records(client, sort="-pm10,station_id", fields="pm10,station_id")
    values = [r["pm10"] for r in by_pm10]
    nulls = sum(r["pm10"] is None for r in rows)
    assert values[:nulls] == [None] * nulls  # descending: nulls first (they count as the largest)
    assert values[nulls:] == sorted(values[nulls:], reverse=True)
    ascending = [r["pm10"] for r in all_records(client, sort="pm10")]
    assert ascending[-nulls:] == [None] * nulls and ascending[:-nulls] == sorted(ascending[:-nulls])


@pytest.mark.parametrize("sort", [None, "-pm10", "station_name,-observed_at", "air_quality_level,-_offset"])
def test_small_pages_give_exactly_the_one_big_page(client, sort):
    params = {"sort": sort} if sort else {}
    whole = all_records(client, **params)
    for limit in (1, 7, 30):
        assert all_records(client, limit=limit, **params) == whole


def test_bad_parameters_answer_400_in_the_one_shape(client):
    for params in (
        {"eq": "district:강남구"},
        {"fields": "observed_at,nope"},
        {"sort": "-nope"},
    ):
        error = assert_error(client.get(f"{URL}/records", params=params), 400, "bad_request")
        assert "pm10" in error["hint"] and "station_name" in error["hint"]  # the hint lists the columns
    for params in (
        {"eq": "station_name"},
        {"eq": "pm10:lots"},
        {"eq": "air_quality_index:1.5"},
        {"eq": "observed_at:2026-11-20T00:00:00"},
        {"eq": "air_quality_index:99999999999999999999999"},
        {"eq": "observed_at:9999-12-31T23:59:59-14:00"},
        {"since": "9999-12-31T23:59:59-14:00"},
        {"bbox": "126,37,127"},
        {"bbox": "126,37,127,x"},
        {"bbox": "127,37,126,38"},
        {"bbox": "126,37,127,91"},
        {"fields": ""},
        {"since": "2026-11-21T00:00:00Z", "until": "2026-11-20T00:00:00Z"},
    ):
        assert_error(client.get(f"{URL}/records", params=params), 400, "bad_request")
        assert_error(client.get(f"{URL}/download", params=params), 400, "bad_request")
    assert_error(client.get(f"{URL}/records", params={"limit": 0}), 400, "bad_request")
    no_location = "/api/v1/datasets/bike_rentals_hourly"
    assert_error(client.get(f"{no_location}/records", params={"bbox": "126,37,127,38"}), 400, "bad_request")
    assert_error(client.get(f"{no_location}/download", params={"format": "geojson"}), 400, "bad_request")
    assert_error(client.get(f"{URL}/download", params={"format": "parquet", "bom": "true"}), 400, "bad_request")
    assert_error(client.get(f"{URL}/download", params={"bom": "true", "encoding": "cp949"}), 400, "bad_request")
    page = client.get(f"{URL}/records", params={"limit": 5, "sort": "-pm10"}).json()
    other_sort = {"limit": 5, "sort": "pm10", "cursor": page["next_cursor"]}
    error = assert_error(client.get(f"{URL}/records", params=other_sort), 400, "bad_request")
    assert "sort" in error["hint"]


def test_filter_values_are_parameters_never_sql(client, rows):
    hostile = "x' OR '1'='1"
    assert all_records(client, eq=f"station_name:{hostile}") == []
    error = assert_error(client.get(f"{URL}/records", params={"sort": 'pm10" DESC --'}), 400, "bad_request")
    assert "no column" in error["message"]


# ---- cursors and snapshots ------------------------------------------------------------------------------------


def test_a_cursor_reads_its_snapshot_while_files_land_and_vanish(settings, rows, monkeypatch):
    with TestClient(create_app(settings)) as client:
        first = client.get(f"{URL}/records", params={"limit": 50})
        write_chunk(settings, make_rows(30, first=1000), partition=0, first=60)  # lands after the first page
        second = client.get(f"{URL}/records", params={"limit": 50, "cursor": first.json()["next_cursor"]}).json()
        third = client.get(f"{URL}/records", params={"limit": 50, "cursor": second["next_cursor"]}).json()
        assert first.json()["snapshot"] == second["snapshot"] == third["snapshot"]
        assert len(first.json()["rows"]) + second["count"] + third["count"] == len(rows)  # not the new 30
        assert not third["truncated"]
        assert len(all_records(client)) == len(rows) + 30  # a new first page sees them

        page = client.get(f"{URL}/records", params={"limit": 10, "sort": "-pm10"}).json()
        next(lake.dataset_dir(settings.lake, "clean", DATASET).glob("date=*/*+1+000000000000-*.parquet")).unlink()
        error = assert_error(
            client.get(f"{URL}/records", params={"limit": 10, "sort": "-pm10", "cursor": page["next_cursor"]}),
            410,
            "gone",
        )
        assert "without cursor" in error["hint"]


def test_an_expired_cursor_answers_410(settings, rows, monkeypatch):
    monkeypatch.setenv("CITYHUB_CURSOR_TTL_S", "1")
    with TestClient(create_app(Settings())) as client:
        page = client.get(f"{URL}/records", params={"limit": 10}).json()
        ok = client.get(f"{URL}/records", params={"limit": 10, "cursor": page["next_cursor"]})
        assert ok.status_code == 200
        time.sleep(1.3)
        error = assert_error(
            client.get(f"{URL}/records", params={"limit": 10, "cursor": page["next_cursor"]}), 410, "gone"
        )
        assert "CITYHUB_CURSOR_TTL_S" in error["message"] and error["hint"]


# ---- downloads ------------------------------------------------------------------------------------------------


def download(client: TestClient, **params) -> httpx.Response:
    response = client.get(f"{URL}/download", params=params)
    assert response.status_code == 200, response.text
    return response


def pandas_types() -> dict[str, str]:
    """The contract's column types as pandas dtypes (so an all-null column reads as its type, not a guess)."""
    out = {}
    for f in get_contract(DATASET).schema:
        if pa.types.is_floating(f.type):
            out[f.name] = "float64"
        elif pa.types.is_integer(f.type):
            out[f.name] = "Int64"
        elif pa.types.is_boolean(f.type):
            out[f.name] = "boolean"
        else:
            out[f.name] = "string"  # text, and times as the ISO 8601 text both give
    return out


def test_csv_with_bom_reads_back_in_pandas_as_the_records_and_the_parquet(client, rows, tmp_path):
    records = all_records(client, limit=13)
    response = download(client, format="csv", bom="true")
    body = response.content
    assert body.startswith(formats.BOM) and b"\r\n" in body
    assert response.headers["x-total-rows"] == str(len(rows))
    assert body.count(b'"say ""hi"", then go"') == sum(r["station_name"] == NAMES[2] for r in rows)
    dtypes = pandas_types()
    from_csv = pd.read_csv(io.BytesIO(body), encoding="utf-8-sig", dtype=dtypes)
    from_records = pd.DataFrame(records).astype(dtypes)
    assert from_csv["station_name"].isna().sum() == sum(r["station_name"] is None for r in rows)
    pd.testing.assert_frame_equal(from_csv, from_records)
    parquet = tmp_path / "a.parquet"
    parquet.write_bytes(download(client, format="parquet").content)
    assert formats.json_rows(pq.read_table(parquet)) == records
    assert pq.read_table(parquet).schema.field("observed_at").type == pa.timestamp("us", tz="UTC")


def test_cp949_csv_round_trips_korean_and_marks_what_it_cannot_encode(client, settings, rows):
    korean = {"eq": ["station_name:강남구", "station_name:종로구", "station_name:서초구"]}
    utf8 = download(client, format="csv", **korean).content.decode("utf-8")
    cp949 = download(client, format="csv", encoding="cp949", **korean)
    assert cp949.headers["content-type"] == "text/csv; charset=cp949"
    assert cp949.content.decode("cp949") == utf8 and "강남구" in utf8
    assert pd.read_csv(io.BytesIO(cp949.content), encoding="cp949").equals(pd.read_csv(io.StringIO(utf8)))

    tree = make_rows(1, first=5000)[0] | {"station_name": "숲 🌳 공원"}
    write_chunk(settings, [tree], partition=0, first=500)
    marked = download(client, format="csv", encoding="cp949", eq="_offset:500")
    assert marked.headers["x-unencodable-replacement"] == "?"
    assert "숲 ? 공원" in marked.content.decode("cp949")


def test_geojson_is_a_valid_feature_collection_of_points(client, rows):
    response = download(client, format="geojson", bbox="126.9,37.45,127.0,37.55", fields="observed_at,pm10,lon")
    assert response.headers["content-type"] == "application/geo+json"
    collection = json.loads(response.content)
    assert set(collection) == {"type", "features"} and collection["type"] == "FeatureCollection"
    features = collection["features"]
    assert len(features) == int(response.headers["x-total-rows"]) > 0
    for feature in features:
        assert set(feature) == {"type", "geometry", "properties"} and feature["type"] == "Feature"
        geometry = feature["geometry"]
        assert geometry["type"] == "Point" and len(geometry["coordinates"]) == 2
        lon, lat = geometry["coordinates"]
        assert 126.9 <= lon <= 127.0 and 37.45 <= lat <= 37.55  # RFC 7946: [longitude, latitude]
        assert list(feature["properties"]) == ["observed_at", "pm10"]  # coordinates are the geometry


def test_parquet_in_many_row_groups_encoded_ahead_is_the_arrow_stream_in_order(client, rows, monkeypatch):
    """Row groups are encoded on the shared threads while the next are read: their order must survive."""
    monkeypatch.setattr(formats, "BATCH_ROWS", 7)
    monkeypatch.setattr(formats, "PARQUET_GROUP_ROWS", 20)
    for sort in ("-pm10", None):
        params = {"sort": sort} if sort else {}
        arrow = ipc.open_stream(download(client, format="arrow", **params).content).read_all()
        parquet = pq.ParquetFile(pa.BufferReader(download(client, format="parquet", **params).content))
        assert parquet.metadata.num_row_groups == 6  # 120 rows: 21, 21, 21, 21, 21, 15
        assert parquet.read().equals(arrow) and arrow.num_rows == len(rows)


def test_arrow_ipc_stream_reads_in_pyarrow_as_the_parquet(client, rows, tmp_path):
    response = download(client, format="arrow", sort="-pm10")
    assert response.headers["content-type"] == "application/vnd.apache.arrow.stream"
    table = ipc.open_stream(response.content).read_all()
    assert table.num_rows == int(response.headers["x-total-rows"]) == len(rows)
    parquet = tmp_path / "b.parquet"
    parquet.write_bytes(download(client, format="parquet", sort="-pm10").content)
    assert table.equals(pq.read_table(parquet))
    empty = download(client, format="arrow", eq="station_name:nowhere")
    assert ipc.open_stream(empty.content).read_all().num_rows == 0 and empty.headers["x-total-rows"] == "0"


def test_ngsi_ld_key_values_entities(client, rows):
    response = download(client, format="ngsi-ld")
    assert "json-ld#context" in response.headers["link"]
    entities = json.loads(response.content)
    assert isinstance(entities, list) and len(entities) == int(response.headers["x-total-rows"]) == len(rows)
    for entity, row in zip(entities, sorted(rows, key=lambda r: r["observed_at"]), strict=True):
        assert entity["id"].startswith("urn:ngsi-ld:AirQualityObserved:") and entity["type"] == "AirQualityObserved"
        assert entity["location"]["type"] == "Point" and len(entity["location"]["coordinates"]) == 2
        assert not {"station_id", "lon", "lat", "_topic", "_offset"} & set(entity)
        assert None not in entity.values()
        assert entity["dateObserved"] == iso(row["observed_at"])  # the FIWARE attribute the feed sent
        assert entity.get("name") == row["station_name"] and "station_name" not in entity
        assert entity.get("pm10") == row["pm10"] and entity.get("airQualityLevel") == row["air_quality_level"]
    with_lineage = json.loads(download(client, format="ngsi-ld", fields="pm10,_offset").content)
    assert set(with_lineage[0]) <= {"id", "type", "location", "pm10", "_offset"} and "_offset" in with_lineage[0]


def test_x_total_rows_counts_what_each_format_holds(client, rows, tmp_path):
    params = {"eq": "air_quality_level:good", "since": iso(START + timedelta(hours=1))}
    expected = sum(r["air_quality_level"] == "good" and r["observed_at"] >= START + timedelta(hours=1) for r in rows)
    assert expected > 0
    counted = {
        "csv": lambda b: len(pd.read_csv(io.BytesIO(b))),
        "jsonl": lambda b: len(b.decode().splitlines()),
        "geojson": lambda b: len(json.loads(b)["features"]),
        "ngsi-ld": lambda b: len(json.loads(b)),
        "arrow": lambda b: ipc.open_stream(b).read_all().num_rows,
        "parquet": lambda b: pq.read_table(pa.BufferReader(b)).num_rows,
    }
    for fmt, count in counted.items():
        response = download(client, format=fmt, **params)
        assert response.headers["x-total-rows"] == str(expected) and count(response.content) == expected, fmt
        assert response.headers["content-disposition"].startswith("attachment; filename=")


@contextmanager
def serve(app) -> Iterator[str]:
    """``app`` on a real uvicorn server in this process (so that a test can break or slow the writer)."""
    port = free_port()
    running = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical"))
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not running.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        running.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def server(settings, rows):
    with serve(create_app(settings)) as base:
        yield base


def test_a_failure_mid_stream_aborts_the_connection(server, rows, monkeypatch):
    monkeypatch.setattr(formats, "BATCH_ROWS", 10)
    with httpx.Client(base_url=server, timeout=30) as http:
        whole = http.get(f"{URL}/download", params={"format": "jsonl"})
        assert whole.status_code == 200 and len(whole.text.splitlines()) == len(rows)
        assert whole.headers["x-total-rows"] == str(len(rows)) and whole.headers["transfer-encoding"] == "chunked"

        def broken(reader):
            batches = iter(reader)
            yield next(batches)
            raise OSError("disk went away")

        monkeypatch.setattr(formats, "record_batches", broken)
        for fmt in ("jsonl", "csv", "parquet"):
            received = b""
            with (
                pytest.raises(httpx.RemoteProtocolError),
                http.stream("GET", f"{URL}/download", params={"format": fmt}) as response,
            ):
                assert response.status_code == 200 and response.headers["x-total-rows"] == str(len(rows))
                for chunk in response.iter_bytes():
                    received += chunk
            assert received, fmt  # the first batch arrived, then the connection was cut, not closed cleanly


def test_a_download_past_its_time_limit_is_cut_off(settings, rows, monkeypatch):
    monkeypatch.setenv("CITYHUB_DOWNLOAD_TIMEOUT_S", "0.5")
    monkeypatch.setattr(formats, "BATCH_ROWS", 10)
    slow_reader = formats.record_batches

    def slow(reader):
        for batch in slow_reader(reader):
            time.sleep(0.2)  # a slow client, or a slow disk
            yield batch

    monkeypatch.setattr(formats, "record_batches", slow)
    received = b""
    with (
        serve(create_app(Settings())) as base,
        httpx.Client(base_url=base, timeout=30) as http,
        pytest.raises(httpx.RemoteProtocolError),
        http.stream("GET", f"{URL}/download", params={"format": "csv"}) as response,
    ):
        assert response.status_code == 200
        for chunk in response.iter_bytes():
            received += chunk
    assert 0 < received.count(b"\r\n") < len(rows)  # some rows came, then the stream was stopped


def test_time_ranges_read_only_their_partitions_and_miss_no_row_at_day_edges(settings):
    """Rows two minutes either side of three UTC midnights, in day partitions: ranges given in Seoul time or
    UTC, ending exactly at midnight or open-ended, select exactly the rows a plain filter does."""
    edges = [START + timedelta(days=d) for d in range(1, 4)]
    data = [
        {**row, "observed_at": edge + timedelta(minutes=minutes)}
        for n, edge in enumerate(edges)
        for row, minutes in zip(make_rows(4, first=4 * n), (-2, -1, 0, 1), strict=True)
    ]
    for k in range(0, len(data), 2):  # a file per pair: each pair is on one side of a midnight, one UTC day
        write_chunk(settings, data[k : k + 2], partition=0, first=k)
    seoul = timezone(timedelta(hours=9))
    ranges = [
        (edges[0] - timedelta(minutes=1), edges[1]),  # ends exactly on a midnight: that day is not read
        (edges[0].astimezone(seoul), (edges[2] + timedelta(minutes=1)).astimezone(seoul)),
        (edges[1], None),
        (None, edges[1] + timedelta(microseconds=1)),
    ]
    pruned = Lake(settings).files(get_contract(DATASET), since=ranges[0][0], until=ranges[0][1])
    assert {f.parent.name for f in pruned} == {
        f"date={(edges[0] - timedelta(days=1)).date()}",
        f"date={edges[0].date()}",
    }
    with TestClient(create_app(settings)) as client:
        for since, until in ranges:
            params = {k: v.isoformat() for k, v in (("since", since), ("until", until)) if v}
            expected = sorted(
                r["observed_at"]
                for r in data
                if (since is None or r["observed_at"] >= since) and (until is None or r["observed_at"] < until)
            )
            got = [r["observed_at"] for r in all_records(client, limit=3, **params)]
            assert got == [iso(t) for t in expected], params
            assert download(client, format="csv", **params).headers["x-total-rows"] == str(len(expected))
            counted = client.get(f"{URL}/aggregate", params={**params, "bucket": "day"}).json()["rows"]
            assert sum(r["rows"] for r in counted) == len(expected), params
        # the ends of time (what a fuzzer sends first): the instant before year 1 has no date in Python
        ends_of_time = [
            ("0001-01-01T00:00:00Z", None, len(data)),
            (None, "0001-01-01T00:00:00Z", 0),
            ("9999-12-31T23:59:59.999999Z", None, 0),
            (None, "9999-12-31T23:59:59.999999Z", len(data)),
        ]
        for since, until, expected_rows in ends_of_time:
            params = {k: v for k, v in (("since", since), ("until", until)) if v}
            assert download(client, format="csv", **params).headers["x-total-rows"] == str(expected_rows), params


def test_a_large_day_downloads_in_time_windows_as_the_same_file(settings):
    """A day with more matching rows than CITYHUB_DOWNLOAD_SORT_ROWS is sorted in time windows, one after the
    other: the file is byte for byte the one a single sort gives, either way of the event time, filtered or not,
    rows exactly on a window's edge included once."""
    day = START + timedelta(days=1)
    data = make_rows(2400)
    for i, row in enumerate(data):  # one day, ten rows a minute-ish, ties; some exactly on the 8 h cuts
        row["observed_at"] = day + timedelta(seconds=36 * (i // 3))
    data[600]["observed_at"] = data[601]["observed_at"] = day + timedelta(hours=8)
    data[1800]["observed_at"] = day + timedelta(hours=16)
    for k in range(0, len(data), 600):
        write_chunk(settings, data[k : k + 600], partition=(k // 600) % 2, first=k)
    small_day = [{**row, "observed_at": START + timedelta(minutes=i)} for i, row in enumerate(make_rows(50))]
    write_chunk(settings, small_day, partition=0, first=3000)  # a small day before it: one part
    contract = get_contract(DATASET)
    files = Lake(settings).files(contract)
    rows_of = {f: pq.read_metadata(f).num_rows for f in files}
    windows = formats.download_parts(RowQuery.parse(contract), files, rows_of, 1000)
    assert [len(p.files) for p in windows] == [1, 4, 4, 4] and windows[1].window[0] is None
    queries = [
        {},
        {"sort": "-observed_at"},
        {"since": iso(day + timedelta(hours=4)), "eq": "station_name:강남구"},
        {"sort": "-observed_at,pm10", "until": iso(day + timedelta(hours=20))},
    ]
    with TestClient(create_app(settings)) as client:
        whole = {}
        for n, params in enumerate(queries):
            for fmt in ("csv", "parquet"):
                whole[n, fmt] = download(client, format=fmt, **params)
        settings.download_sort_rows = 1000
        for n, params in enumerate(queries):
            for fmt in ("csv", "parquet"):
                windowed = download(client, format=fmt, **params)
                assert windowed.content == whole[n, fmt].content, (params, fmt)
                assert windowed.headers["x-total-rows"] == whole[n, fmt].headers["x-total-rows"]
        assert int(whole[0, "csv"].headers["x-total-rows"]) == 2450


def test_a_part_failing_while_the_one_before_is_written_stops_the_download_after_it(settings, rows):
    """The next part's query runs while the current one is written: its failure (here a file gone) still stops
    the stream — after the rows before it, never silently skipping the part — and leaves no cursor open."""
    contract = get_contract(DATASET)
    lake = Lake(settings)
    files = lake.files(contract)
    whole = (f"SELECT * FROM {lake.relation(contract, files)} ORDER BY _partition, _offset", [])
    gone = (f"SELECT * FROM {lake.relation(contract, [files[0].with_name('gone.parquet')])}", [])
    spec = formats.Spec("csv", contract, contract.schema.names, False, "utf-8")
    written = []
    with pytest.raises(duckdb.IOException, match="gone.parquet"):
        for chunk in formats.stream(lake, [whole, gone, whole], spec):
            written.append(bytes(chunk))
    first_part = pd.read_csv(io.BytesIO(b"".join(written)))
    assert len(first_part) == len(rows)  # every row of the first part went out before the failure
