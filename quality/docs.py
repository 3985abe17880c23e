"""GX Data Docs of the DAGs' validations, served by the API under ``/quality/``.

Each dataset has a GX file-based project under ``settings.state / "gx" / "projects" / <dataset>``, created on
first use (never at import), whose Data Docs site is built into ``settings.state / "gx" / "docs" / <dataset>``.
One site per dataset rather than one for all: GX's index page re-reads every stored result on each build, so a
shared site would get slower with every dataset and run, and DAGs of different datasets run at once. Kept to
the newest ``data_docs_keep`` results, a dataset's build stays well under a second (measured ~0.5 s on the
2-core dev machine), so the validate task builds the docs right after validating rather than deferring them.

What is stored is a copy of GX's result fit for publishing: never row ids or complete value lists; for a
safe-zone dataset only counts and expectation names (no unexpected or observed values, no data fingerprint,
no exception text), the same rule as ``/api/v1/datasets/{id}/quality``.
"""

from __future__ import annotations

import fcntl
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from catalog.contract import Contract
from infra.settings import Settings
from quality.suite import build_suite, unique_reading

if TYPE_CHECKING:
    from great_expectations.core import ExpectationSuiteValidationResult, ExpectationValidationResult
    from great_expectations.data_context import FileDataContext

log = logging.getLogger(__name__)

SITE = "cityhub"
COUNTS = (
    "element_count",
    "missing_count",
    "missing_percent",
    "unexpected_count",
    "unexpected_percent",
    "unexpected_percent_total",
    "unexpected_percent_nonmissing",
)
# Open data may show a sample of what failed (GX's SUMMARY format); row ids and full lists never help a reader.
OPEN_DETAILS = (*COUNTS, "partial_unexpected_list", "partial_unexpected_counts", "observed_value", "details")


def docs_root(settings: Settings) -> Path:
    """The folder the API serves under ``/quality/``: one built site per dataset."""
    return settings.state / "gx" / "docs"


def site_index(settings: Settings, dataset_id: str) -> Path:
    return docs_root(settings) / dataset_id / "index.html"


def publishable(
    result: ExpectationSuiteValidationResult, contract: Contract, markers: dict
) -> ExpectationSuiteValidationResult:
    """A copy of GX's result for the Data Docs: what the dataset's tier allows to be published, plus
    ``markers`` about the batch (counts only) shown in the docs' "Batch Markers" table."""
    from great_expectations.core import ExpectationSuiteValidationResult

    meta = dict(result.meta)
    batch_markers = dict(meta.get("batch_markers") or {})
    if not contract.is_open:
        batch_markers.pop("pandas_data_fingerprint", None)  # a hash of the rows themselves
    meta["batch_markers"] = {**batch_markers, **markers}
    return ExpectationSuiteValidationResult(
        success=result.success,
        results=[_publishable_result(r, contract) for r in result.results],
        suite_name=result.suite_name,
        suite_parameters=result.suite_parameters,
        statistics=result.statistics,
        meta=meta,
    )


def _publishable_result(result: ExpectationValidationResult, contract: Contract) -> ExpectationValidationResult:
    from great_expectations.core import ExpectationValidationResult

    keep = OPEN_DETAILS if contract.is_open else COUNTS
    info = dict(result.exception_info or {})
    if not contract.is_open and info.get("raised_exception"):
        info = {"raised_exception": True, "exception_message": "withheld: safe-zone data", "exception_traceback": None}
    return ExpectationValidationResult(
        success=result.success,
        expectation_config=result.expectation_config,
        result={k: v for k, v in (result.result or {}).items() if k in keep},
        meta=result.meta,
        exception_info=info,
    )


@contextmanager
def _project(settings: Settings, contract: Contract) -> Iterator[FileDataContext]:
    """The dataset's GX file context, created on first use, held under a lock: a replay may validate while the
    DAG does, and GX's stores and site builder are not safe against a second writer."""
    import great_expectations as gx

    projects = settings.state / "gx" / "projects"
    projects.mkdir(parents=True, exist_ok=True)
    with open(projects / f"{contract.id}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        context = gx.get_context(mode="file", project_root_dir=projects / contract.id)
        site = {
            "class_name": "SiteBuilder",
            "show_how_to_buttons": False,
            "store_backend": {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": str(docs_root(settings) / contract.id),
            },
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        }
        if context.variables.data_docs_sites != {SITE: site}:  # first use, or CITYHUB_HOME moved
            context.variables.data_docs_sites = {SITE: site}
            context.variables.save()
        yield context


Results = list[tuple[str, "ExpectationSuiteValidationResult"]]  # (batch name, publishable result)


def record(settings: Settings, contract: Contract, run_name: str, run_time: datetime, results: Results) -> Path:
    """Store a run's publishable results in the dataset's GX project, drop all
    but the newest ``settings.data_docs_keep``, and rebuild the dataset's Data Docs. Returns the index page.

    ``run_time`` is fixed per run (not "now"), so a retried task replaces its own results instead of adding a
    second copy of them."""
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    with _project(settings, contract) as context:
        suite = context.suites.add_or_update(build_suite(contract))
        suite_key = ExpectationSuiteIdentifier(name=suite.name)
        run = RunIdentifier(run_name=run_name, run_time=run_time)
        keys = []
        for batch_name, result in results:
            key = ValidationResultIdentifier(
                expectation_suite_identifier=suite_key, run_id=run, batch_identifier=batch_name
            )
            context.validation_results_store.set(key, result)
            keys.append(key)
        _prune(context, suite.name, settings.data_docs_keep)
        context.build_data_docs(site_names=[SITE], resource_identifiers=[*keys, suite_key])
    return site_index(settings, contract.id)


def _prune(context: FileDataContext, suite_name: str, keep: int) -> None:
    """Only the newest ``keep`` results stay; the next build drops the pages of the others."""
    store = context.validation_results_store
    stored = [k for k in store.list_keys() if k.expectation_suite_identifier.name == suite_name]
    stored.sort(key=lambda k: (k.run_id.run_time, k.run_id.run_name or "", k.batch_identifier), reverse=True)
    for key in stored[keep:]:
        store.remove_key(key)


def batch_markers(contract: Contract, table_rows: int, later_copies: int) -> dict:
    """What the Data Docs say about a validated batch beyond GX's own result (counts only)."""
    return {
        "cityhub_rows": table_rows,
        # dedupe marks them before GX (only it sees the lake); GX's own check covers the other rows
        f"cityhub_later_copies ({unique_reading(contract).name})": later_copies,
    }


def record_safely(settings: Settings, contract: Contract, run_name: str, run_time: datetime, results: Results) -> None:
    """:func:`record`, but a failure only logs: the Data Docs are a view of the run, never a reason to stop
    landing its data (the verdicts are in the quarantine and the ledger whatever happens here)."""
    try:
        record(settings, contract, run_name, run_time, results)
    except Exception as exc:  # noqa: BLE001 - any GX or disk error: the docs stay as they were
        log.warning("Data Docs of %s not updated: %s", contract.id, exc, extra={"dataset": contract.id})
