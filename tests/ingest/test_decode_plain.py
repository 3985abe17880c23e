"""The plain (keyValues) decoding query gives what the general one gives, wherever the batch check lets it run."""

from __future__ import annotations

import json
import time

import pytest

from catalog import get_contract, landed_contracts
from ingest.decode import RawRecords, decode_batch, raw_batch
from ingest.produce import records_from_file
from ingest.simulate import simulate
from tests.conftest import FIXTURES
from tests.ingest.test_fiware_golden import MODELS

NOW_MS = int(time.time() * 1000)  # the simulator's readings are of the last hours
# keyValues shapes the general query handles on its own paths: a location as a list, a string, a Point with
# text coordinates, a MultiPoint, a bare number; markers, nulls, arrays of values, nested objects that are no
# NGSI attribute, wrong types, an entity of another type, not an object at all.
ODD_SHAPES: list[object] = [
    {"location": [{"type": "Point", "coordinates": [126.97, 37.56]}]},
    {"location": "126.97,37.56"},
    {"location": {"type": "Point", "coordinates": ["126.97", "37.56"]}},
    {"location": {"type": "Point", "coordinates": "126.97,37.56"}},
    {"location": {"type": "MultiPoint", "coordinates": [[126.97, 37.56], [126.99, 37.58]]}},
    {"location": {"type": "Polygon", "coordinates": [[[126.97, 37.56]]]}},
    {"location": 5},
    {"location": None},
    {"dateObserved": ["2026-11-21T10:00:00Z"]},
    {"dateObserved": "-"},
    {"dateObserved": "2026-11-21T10:00:00+09:00/2026-11-21T11:00:00+09:00"},
    {"dateObserved": {"start": "2026-11-21T10:00:00Z"}},
    {"address": {"streetAddress": "세종대로 110", "addressLocality": "Seoul"}},
    {"address": "세종대로 110"},
    {"type": "SomethingElse"},
    [1, 2, 3],
    "just text",
]


def _batch(values: list[bytes], contract):
    n = len(values)
    return raw_batch(RawRecords(["t"] * n, [0] * n, list(range(n)), [NOW_MS] * n, values, [None] * n), contract)


def _both(values: list[bytes], contract) -> tuple[list[dict], list[dict]]:
    batch = _batch(values, contract)
    return decode_batch(batch, contract, plain=True).to_pylist(), decode_batch(batch, contract, plain=False).to_pylist()


def _with_every_attribute_odd(base: dict) -> list[bytes]:
    out = []
    for shape in ODD_SHAPES:
        entity = {**base, **shape} if isinstance(shape, dict) else shape
        out.append(json.dumps(entity, ensure_ascii=False).encode())
    for key in base:  # every attribute in turn as a list, an object, a number, a marker
        for odd in ([base[key]], {"x": base[key]}, 7, "-", None):
            out.append(json.dumps({**base, key: odd}, ensure_ascii=False).encode())
    return out


@pytest.mark.parametrize("dataset_id", [c.id for c in landed_contracts()])
def test_plain_query_equals_the_general_one_on_simulated_feeds(dataset_id):
    contract = get_contract(dataset_id)
    records, _ = simulate(contract, 1500, seed=7, bad_ratio=0.05)
    values = [r.value for r in records]
    base = json.loads(next(v for v in values if v.startswith(b"{") and v.endswith(b"}")))
    plain, general = _both(values + _with_every_attribute_odd(base), contract)
    assert plain == general


@pytest.mark.parametrize("dataset_id", sorted(MODELS))
def test_plain_query_equals_the_general_one_on_real_key_values_examples(dataset_id):
    contract = get_contract(dataset_id)
    values = []
    for name in ("example.json", "example.jsonld"):
        values += [r.value for r in records_from_file(FIXTURES / "fiware" / MODELS[dataset_id] / name)]
    plain, general = _both(values, contract)
    assert plain == general


def test_simulated_key_values_feeds_take_the_plain_query():
    """The batch check finds no NGSI attribute objects in keyValues traffic, so the cheaper query runs."""
    from ingest.decode import _decoder_db, _is_plain

    contract = get_contract("traffic_flow")
    records, _ = simulate(contract, 500, seed=3, bad_ratio=0.02)
    con = _decoder_db().cursor()
    con.register("batch", _batch([r.value for r in records], contract))
    assert _is_plain(con)
    normalized = FIXTURES / "fiware" / "TrafficFlowObserved" / "example-normalized.json"
    con.register("batch", _batch([r.value for r in records] + [records_from_file(normalized)[0].value], contract))
    assert not _is_plain(con)
    escaped = b'{"id": "x", "type": "TrafficFlowObserved", "intensity": {"v\\u0061lue": 3}}'
    con.register("batch", _batch([escaped], contract))
    assert not _is_plain(con)
