"""A real AirKorea response (Korea's public data portal) lands from JSON, and the same rows from portal XML and
CP949 / UTF-8-BOM CSV: numbers as strings, '-' as missing, KST without offset, all-null rows quarantined."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from xml.sax.saxutils import escape

import pyarrow.parquet as pq
import pytest

from catalog import get_contract
from infra.errors import BadRequest
from ingest.produce import entities_from_file, records_from_file, send
from ingest.runner import ingest_loop
from tests.conftest import FIXTURES

NATIONWIDE = FIXTURES / "korea" / "airkorea" / "getCtprvnRltmMesureDnsty_nationwide_2024-02-18T20.json"
ITEMS = json.loads(NATIONWIDE.read_text())["response"]["body"]["items"]


def _land(settings, path) -> tuple[list[dict], list[dict]]:
    contract = get_contract("kr_air_quality")
    send(settings, contract, records_from_file(path))
    ingest_loop(settings, [contract.id])
    return _zone(settings, "clean"), _zone(settings, "quarantine")


def _zone(settings, zone: str) -> list[dict]:
    files = sorted((settings.lake / zone / "kr_air_quality").rglob("*.parquet"))
    return [row for f in files for row in pq.read_table(f).to_pylist()]


def test_the_nationwide_json_lands_with_the_expected_values(settings):
    clean, quarantined = _land(settings, NATIONWIDE)
    assert (len(clean), len(quarantined)) == (650, 6)  # the 6 all-null rows, and only they
    assert all("ExpectColumnValuesToNotBeNull(observed_at)" in r["_reason"] for r in quarantined)
    [jisan] = [r for r in clean if (r["sido"], r["station_name"]) == ("대구", "지산동")]
    assert jisan["observed_at"] == datetime(2024, 2, 18, 10, 0, tzinfo=UTC)  # 19:00 KST
    assert (jisan["pm10"], jisan["pm25"], jisan["so2"], jisan["no2"], jisan["khai"]) == (45.0, 25.0, 0.003, 0.036, 61)
    [bongmyeong] = [r for r in clean if (r["sido"], r["station_name"]) == ("충북", "봉명동")]
    assert bongmyeong["pm10"] is None and bongmyeong["pm10_flag"] == "통신장애" and bongmyeong["co"] == 1.0


def test_portal_xml_and_korean_csv_land_the_same_rows(settings, tmp_path):
    xml_items = "".join(
        "<item>" + "".join(f"<{k}>{escape(v)}</{k}>" for k, v in item.items() if v is not None) + "</item>"
        for item in ITEMS
    )
    xml = (
        f"<?xml version='1.0' encoding='UTF-8'?><response><header><resultCode>00</resultCode>"
        f"<resultMsg>NORMAL_CODE</resultMsg></header><body><items>{xml_items}</items></body></response>"
    )
    (tmp_path / "airkorea.xml").write_text(xml, encoding="utf-8")
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(ITEMS[0]))
    writer.writeheader()
    writer.writerows({k: ("" if v is None else v) for k, v in item.items()} for item in ITEMS)
    (tmp_path / "airkorea.csv").write_bytes(out.getvalue().encode("cp949"))
    (tmp_path / "bom.csv").write_bytes(out.getvalue().encode("utf-8-sig"))

    stations = [e["stationName"] for e in entities_from_file(tmp_path / "airkorea.csv")]
    assert stations == [i["stationName"] for i in ITEMS]
    assert list(entities_from_file(tmp_path / "bom.csv"))[0]["so2Grade"] == ITEMS[0]["so2Grade"]  # BOM gone
    clean_xml, quarantined_xml = _land(settings, tmp_path / "airkorea.xml")
    assert (len(clean_xml), len(quarantined_xml)) == (650, 6)


def test_a_portal_error_answer_is_refused_with_its_message(tmp_path):
    (tmp_path / "err.json").write_text(
        json.dumps({"response": {"header": {"resultCode": "30", "resultMsg": "SERVICE_KEY_IS_NOT_REGISTERED_ERROR"}}})
    )
    with pytest.raises(BadRequest, match="SERVICE_KEY_IS_NOT_REGISTERED_ERROR"):
        list(entities_from_file(tmp_path / "err.json"))


def test_a_latin1_csv_is_read_as_latin1_not_as_cp949(tmp_path):
    """The hourly bike file is Latin-1: as CP949 its °C (B0 43) would silently become 캜."""
    rows = list(entities_from_file(FIXTURES / "city_csv" / "seoul_bike_hourly" / "SeoulBikeDataFinal.latin1.csv"))
    assert len(rows) == 8760
    assert rows[0]["Temperature(°C)"] == "-5.2" and rows[0]["Dew point temperature(°C)"] == "-17.6"
    assert not any("캜" in name for name in rows[0])
    # Korean CP949 stays Korean, even with a syllable outside KS X 1001 (똠)
    (tmp_path / "ko.csv").write_bytes("이름,값\n똠방각하,1\n".encode("cp949"))
    assert list(entities_from_file(tmp_path / "ko.csv")) == [{"이름": "똠방각하", "값": "1"}]
    (tmp_path / "binary.csv").write_bytes(b"a,b\n\x81\x80,1\n")  # neither UTF-8, CP949 nor Latin-1 text
    with pytest.raises(BadRequest, match="neither UTF-8, CP949 nor Latin-1"):
        list(entities_from_file(tmp_path / "binary.csv"))
