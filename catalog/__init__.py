"""The catalog: every dataset contract, discovered from ``catalog/datasets/*.py`` and any extra folders
named in ``CITYHUB_EXTRA_CATALOG_DIRS`` (each module there defines ``CONTRACT``).

:func:`all_contracts` is every dataset the hub publishes (API listing, portal pages); :func:`landed_contracts`
the ones landed from Kafka (topics, landing DAGs, retention, compaction, simulators); :func:`derived_contracts`
the ones computed from another dataset's clean zone (``Contract.derived_from``)."""

from __future__ import annotations

import functools
import importlib
import importlib.util
import os
import pkgutil
from pathlib import Path

from catalog.contract import Column, Contract
from infra.errors import CatalogError

__all__ = [
    "Column",
    "Contract",
    "all_contracts",
    "derived_contracts",
    "derived_sources",
    "get_contract",
    "landed_contracts",
]


@functools.cache
def _builtin_contracts() -> tuple[Contract, ...]:
    """The built-in contracts, discovered once per process (every API request names a dataset)."""
    return tuple(_builtin())


def _builtin() -> list[Contract]:
    from catalog import datasets

    found = []
    for info in sorted(pkgutil.iter_modules(datasets.__path__), key=lambda i: i.name):
        module = importlib.import_module(f"catalog.datasets.{info.name}")
        found.append(module.CONTRACT)
    return found


def _from_dir(folder: Path) -> list[Contract]:
    found = []
    for path in sorted(folder.glob("*.py")):
        spec = importlib.util.spec_from_file_location(f"cityhub_extra_catalog.{path.stem}", path)
        if spec is None or spec.loader is None:
            continue
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        if hasattr(module, "CONTRACT"):
            found.append(module.CONTRACT)
    return found


def all_contracts() -> list[Contract]:
    """Every contract, built-in first. Reads only the catalog's own Python files (no network, no lake)."""
    contracts = list(_builtin_contracts())
    extra = os.environ.get("CITYHUB_EXTRA_CATALOG_DIRS", "")
    for folder in filter(None, extra.split(os.pathsep)):
        contracts.extend(_from_dir(Path(folder)))
    ids = [c.id for c in contracts]
    dupes = {i for i in ids if ids.count(i) > 1}
    if dupes:
        raise CatalogError(
            f"dataset ids declared twice: {sorted(dupes)}",
            hint="rename one of the contracts",
            status=500,
            code="catalog_error",
        )
    _check_provenance(contracts)
    return contracts


def landed_contracts() -> list[Contract]:
    """Datasets landed from their Kafka topic: each has a topic, a landing DAG and a clean zone of its own."""
    return [c for c in all_contracts() if not c.is_derived]


def derived_contracts(source: str | None = None) -> list[Contract]:
    """Datasets derived from another dataset's clean zone (all of them, or those of ``source``)."""
    return [c for c in all_contracts() if c.is_derived and (source is None or c.derived_from == source)]


def derived_sources() -> list[Contract]:
    """Landed datasets that have derived open datasets: each gets a derive DAG (``dags/cityhub_derived.py``)."""
    return [c for c in landed_contracts() if derived_contracts(c.id)]


def _check_provenance(contracts: list[Contract]) -> None:
    landed = {c.id for c in contracts if not c.is_derived}
    for contract in contracts:
        if contract.is_derived and contract.derived_from not in landed:
            raise CatalogError(
                f"dataset {contract.id!r} is derived from {contract.derived_from!r}, which is not a landed dataset",
                hint=f"name one of: {', '.join(sorted(landed))}",
                status=500,
                code="catalog_error",
            )


def get_contract(dataset_id: str) -> Contract:
    for contract in all_contracts():
        if contract.id == dataset_id:
            return contract
    known = ", ".join(c.id for c in all_contracts())
    raise CatalogError(f"unknown dataset {dataset_id!r}", hint=f"known datasets: {known}")
