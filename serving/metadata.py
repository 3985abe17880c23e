"""Dataset metadata for the API, derived from the contract (DCAT-like field names where they fit)."""

from __future__ import annotations

import json
from datetime import timedelta

from catalog.contract import Contract
from serving.db import Lake


def iso_duration(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes % 1440 == 0:
        return f"P{minutes // 1440}D"
    return f"PT{minutes // 60}H" if minutes % 60 == 0 else f"PT{minutes}M"


def dataset_metadata(contract: Contract, lake: Lake, detail: bool = False) -> dict:
    published = lake.settings.state / "published" / f"{contract.id}.json"
    last_update = json.loads(published.read_text())["published_at"] if published.exists() else None
    meta = {
        "id": contract.id,
        "title": {"ko": contract.title_ko, "en": contract.title_en},
        "description": contract.description,
        "tier": contract.tier,
        "topic": None if contract.is_derived else lake.settings.topic_for(contract.id),
        "licence": contract.licence,
        "cadence": iso_duration(contract.cadence),
        "keywords": list(contract.keywords),
        "entity_type": contract.entity_type,
        "event_time": contract.event_time,
        "key_columns": list(contract.key_columns),
        "last_update": last_update,
        "columns": [
            {
                "name": c.name,
                "type": str(c.arrow_type),
                "unit": c.unit,
                "description": c.description,
                "personal": c.personal,
                "quasi_identifier": c.is_quasi_identifier,
                "generalise": c.generalise,
            }
            for c in contract.stored_columns
        ],
    }
    if contract.is_derived:
        meta["derived_from"] = contract.derived_from  # provenance: the (safe-zone) dataset it is computed from
        meta["suppression"] = {
            "min_persons": lake.settings.min_persons,
            "counted_in": "distinct persons (pseudonyms within one key version), never rows",
            "complementary": "across the hourly and daily releases of the same source",
        }
    if contract.is_open:
        meta["links"] = {
            "records": f"/api/v1/datasets/{contract.id}/records",
            "download": f"/api/v1/datasets/{contract.id}/download?format=csv",
        }
        if detail:
            with lake.cursor() as cur, lake.time_limit(cur):
                meta["row_count"] = cur.execute(f"SELECT count(*) FROM {lake.source(contract)}").fetchone()[0]
                if contract.is_derived:  # how many cells are withheld, and why
                    counts = cur.execute(
                        f"SELECT suppression, count(*) FROM {lake.source(contract)} WHERE suppressed GROUP BY 1"
                    ).fetchall()
                    meta["suppression"]["suppressed_cells"] = {reason: n for reason, n in sorted(counts)}
    return meta
