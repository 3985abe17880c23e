"""Dataset metadata for the API, derived from the contract (DCAT-like field names where they fit)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

from catalog import get_contract
from catalog.contract import Contract
from infra.errors import CatalogError
from infra.settings import Settings
from serving.db import Lake
from serving.formats import MEDIA

DATASET_PATH = re.compile(r"^/api/v1/datasets/([^/]+)")


def iso_duration(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes % 1440 == 0:
        return f"P{minutes // 1440}D"
    return f"PT{minutes // 60}H" if minutes % 60 == 0 else f"PT{minutes}M"


def _published_at(settings: Settings, dataset_id: str) -> str | None:
    published = settings.state / "published" / f"{dataset_id}.json"
    try:
        return json.loads(published.read_text())["published_at"]
    except (OSError, ValueError, KeyError):
        return None


def last_modified(settings: Settings, path: str) -> str | None:
    """HTTP date of the last landing of the dataset a ``/api/v1/datasets/{id}…`` path names (None otherwise)."""
    found = DATASET_PATH.match(path)
    if not found:
        return None
    try:
        contract = get_contract(found.group(1))
    except CatalogError:
        return None
    published = _published_at(settings, contract.id)
    if published is None:
        return None
    try:
        when = datetime.fromisoformat(published.replace("Z", "+00:00"))
    except ValueError:
        return None
    return format_datetime((when if when.tzinfo else when.replace(tzinfo=UTC)).astimezone(UTC), usegmt=True)


def matches(contract: Contract, query: str | None) -> bool:
    """Whether every word of ``query`` occurs (case-folded) in the dataset's titles, id, description or keywords."""
    if not query:
        return True
    text = " ".join(
        [contract.id, contract.title_ko, contract.title_en, contract.description, contract.entity_type]
        + list(contract.keywords)
    ).casefold()
    return all(word in text for word in query.casefold().split())


def quality_summary(lake_dir: Path, dataset_id: str) -> dict:
    """Rows landed clean and quarantined, over every ledger entry (counts only, public for every tier)."""
    from serving.metrics import ledger_entries

    clean = quarantined = 0
    for entry in ledger_entries(lake_dir, dataset_id):
        clean += entry.get("clean_rows", 0)
        quarantined += entry.get("quarantined_rows", 0)
    total = clean + quarantined
    return {
        "clean_rows": clean,
        "quarantined_rows": quarantined,
        "clean_ratio": round(clean / total, 4) if total else None,
        "report": f"/api/v1/datasets/{dataset_id}/quality",
    }


def dataset_metadata(contract: Contract, lake: Lake, detail: bool = False) -> dict:
    last_update = _published_at(lake.settings, contract.id)
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
    meta["quality"] = quality_summary(lake.settings.lake, contract.id)
    # DCAT vocabulary for harvesters (data.go.kr, European portals): the same facts under dcat:/dct: names
    meta["dcat"] = {
        "@type": "dcat:Dataset",
        "dct:identifier": contract.id,
        "dct:title": [
            {"@language": "ko", "@value": contract.title_ko},
            {"@language": "en", "@value": contract.title_en},
        ],
        "dct:description": contract.description,
        "dct:license": contract.licence,
        "dct:accrualPeriodicity": meta["cadence"],
        "dct:modified": last_update,
        "dcat:keyword": list(contract.keywords),
        "dcat:distribution": [
            {"dcat:accessURL": f"/api/v1/datasets/{contract.id}/download?format={fmt}", "dcat:mediaType": media}
            for fmt, media in DISTRIBUTIONS
        ]
        if contract.is_open
        else [],
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
            "aggregate": f"/api/v1/datasets/{contract.id}/aggregate",
            "changes": f"/api/v1/datasets/{contract.id}/changes",
        }
        # from the Parquet footers (DuckDB reads no data pages for a bare count)
        with lake.cursor() as cur, lake.time_limit(cur):
            meta["row_count"] = cur.execute(f"SELECT count(*) FROM {lake.source(contract)}").fetchone()[0]
            if contract.is_derived and detail:  # how many cells are withheld, and why
                counts = cur.execute(
                    f"SELECT suppression, count(*) FROM {lake.source(contract)} WHERE suppressed GROUP BY 1"
                ).fetchall()
                meta["suppression"]["suppressed_cells"] = {reason: n for reason, n in sorted(counts)}
    return meta


DISTRIBUTIONS = tuple((fmt, MEDIA[fmt].split(";")[0]) for fmt in ("csv", "parquet", "jsonl"))
