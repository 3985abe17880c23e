"""Airflow Assets the DAGs share, named in one place (imported by DAG files: no I/O, no DAG objects here —
a DAG file importing another DAG file would have that file's DAGs attributed to it by the DagBag)."""

from __future__ import annotations

from airflow.sdk import Asset


def clean_asset(dataset_id: str) -> Asset:
    """Emitted by a dataset's landing DAG when it lands into the clean zone."""
    return Asset(name=f"cityhub.clean.{dataset_id}", uri=f"file:///cityhub/lake/clean/{dataset_id}")


def rollup_asset(dataset_id: str) -> Asset:
    """Emitted by a dataset's rollup DAG when it has refreshed the dataset's rollups."""
    return Asset(name=f"cityhub.rollup.{dataset_id}", uri=f"file:///cityhub/lake/rollup/{dataset_id}")


def derived_asset(dataset_id: str) -> Asset:
    """Emitted by the derive DAG of a safe-zone dataset when it has refreshed this derived open dataset."""
    return Asset(name=f"cityhub.derived.{dataset_id}", uri=f"file:///cityhub/lake/derived/{dataset_id}")
