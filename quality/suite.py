"""Great Expectations suites generated from the catalog, and validation that returns row-level verdicts.

GX records failures but never raises; :func:`validate` turns its result into (a) the rows to quarantine with
the name of every expectation they failed, taken from GX's own ``unexpected_index_list`` (and, for the
uniqueness of readings, from the later copies :mod:`transforms.dedupe` marked — see :func:`unique_reading`),
and (b) a :class:`QualityError` for batch-level failures, which make the run fail.
"""

from __future__ import annotations

import logging
import operator
import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import reduce
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from catalog.contract import Contract
from infra.errors import QualityError
from transforms.dedupe import DUPLICATE

if TYPE_CHECKING:
    from great_expectations.core import ExpectationSuiteValidationResult

# GX draws progress bars on every validation and would phone home; tqdm reads this when first imported.
os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")

ROW_ID = "_row"
DECODE_CHECK = "ExpectColumnValuesToBeNull(_decode_error)"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExpectationSpec:
    """A GX expectation as plain data, so the suite can be listed and tested without GX."""

    type: str  # GX class name, e.g. "ExpectColumnValuesToNotBeNull"
    kwargs: dict
    row_level: bool = True
    where_null: tuple[str, ...] = ()  # evaluated only on rows where these columns are null (GX row_condition)
    marked_by: str | None = None  # rows where this column is true fail it too, found before GX (see unique_reading)

    @property
    def name(self) -> str:
        column = self.kwargs.get("column")
        if column:
            return f"{self.type}({column})"
        columns = self.kwargs.get("column_list")
        return f"{self.type}({','.join(columns)})" if columns else self.type


def unique_reading(contract: Contract) -> ExpectationSpec:
    """Each reading (key columns + event time) lands once.

    Which copy is the first is known only to :func:`transforms.dedupe.mark_duplicates`, which sees the lake's
    landed readings and the Kafka order; it marks later copies ``_duplicate``, and they fail this expectation.
    GX then checks the rows left (decoded, not marked) are unique — a check of the marking itself. GX's
    uniqueness flags every copy of a repeated reading (first one included), so a batch that was never marked
    has all its copies quarantined: nothing lands twice. (GX's compound check needs two columns; a dataset
    whose readings are identified by their time alone uses the one-column check.)"""
    identity = list(contract.identity)
    if len(identity) == 1:
        kind, kwargs = "ExpectColumnValuesToBeUnique", {"column": identity[0]}
    else:
        kind, kwargs = (
            "ExpectCompoundColumnsToBeUnique",
            {"column_list": identity, "ignore_row_if": "any_value_is_missing"},
        )
    return ExpectationSpec(kind, kwargs, where_null=("_decode_error", DUPLICATE), marked_by=DUPLICATE)


def expectation_specs(contract: Contract, decoded_columns: list[str]) -> list[ExpectationSpec]:
    """The suite for ``contract``: derived entirely from the contract's columns and reading identity."""
    specs = [
        ExpectationSpec(
            "ExpectTableColumnsToMatchSet",
            {"column_set": decoded_columns, "exact_match": False},
            row_level=False,
        ),
        ExpectationSpec("ExpectColumnValuesToBeNull", {"column": "_decode_error"}),
        unique_reading(contract),
    ]
    for column in contract.columns:
        if column.personal == "drop":
            continue
        if column.required:
            specs.append(ExpectationSpec("ExpectColumnValuesToNotBeNull", {"column": column.name}))
        if column.minimum is not None or column.maximum is not None:
            specs.append(
                ExpectationSpec(
                    "ExpectColumnValuesToBeBetween",
                    {"column": column.name, "min_value": column.minimum, "max_value": column.maximum},
                )
            )
        if column.allowed:
            specs.append(
                ExpectationSpec(
                    "ExpectColumnValuesToBeInSet", {"column": column.name, "value_set": list(column.allowed)}
                )
            )
    return specs


def required_columns(contract: Contract) -> list[str]:
    return [c.name for c in contract.columns if c.personal != "drop"] + ["_decode_error"]


def build_suite(contract: Contract):
    import great_expectations as gx

    # All at once: add_expectation would save each one separately once a file context holds the suite
    expectations = [_gx_expectation(spec) for spec in expectation_specs(contract, required_columns(contract))]
    return gx.ExpectationSuite(name=f"cityhub.{contract.id}", expectations=expectations)


def _gx_expectation(spec: ExpectationSpec):
    import great_expectations as gx
    from great_expectations.expectations.row_conditions import Column

    kwargs = dict(spec.kwargs)
    if spec.where_null:
        kwargs["row_condition"] = reduce(operator.and_, (Column(c).is_null() for c in spec.where_null))
    return getattr(gx.expectations, spec.type)(**kwargs)


def with_duplicate_marks(table: pa.Table) -> pa.Table:
    """A batch that never went through :func:`transforms.dedupe.mark_duplicates` has no marked copies."""
    if DUPLICATE in table.column_names:
        return table
    return table.append_column(pa.field(DUPLICATE, pa.bool_()), pa.nulls(table.num_rows, pa.bool_()))


def marked_rows(table: pa.Table, spec: ExpectationSpec) -> list[int]:
    """Rows failing ``spec`` by their marker column (none for an expectation without one)."""
    if spec.marked_by is None:
        return []
    return pc.indices_nonzero(pc.fill_null(table.column(spec.marked_by), False)).to_pylist()


@dataclass
class Verdict:
    """Which rows failed which expectations, and the batch-level outcome."""

    failures: dict[int, list[str]]  # row id -> expectation names
    evaluated: int
    success: bool

    def reasons(self, num_rows: int, decode_errors: pa.ChunkedArray) -> pa.Array:
        """Per row: the failed expectations joined by ``;`` (null for a clean row). The decode problem's
        kind (never a value) is named beside the expectation that caught it."""
        reasons: list[str | None] = [None] * num_rows
        for row, names in self.failures.items():
            detail = decode_errors[row].as_py()
            reasons[row] = ";".join(f"{n}={detail}" if n == DECODE_CHECK and detail else n for n in names)
        return pa.array(reasons, pa.string())


def check_columns(table: pa.Table, contract: Contract, hint: str) -> None:
    missing = [c for c in required_columns(contract) if c not in table.column_names]
    if missing:
        raise QualityError(f"batch for {contract.id} is unusable: columns {missing} are missing", hint=hint)


def validate(
    table: pa.Table, contract: Contract, record: Callable[[ExpectationSuiteValidationResult], None] | None = None
) -> Verdict:
    """Run the contract's GX suite on ``table``; raise :class:`QualityError` on batch-level failure.

    ``record`` receives GX's result before any verdict is drawn from it (so a failed batch is recorded too):
    the DAGs keep it for the Data Docs (:mod:`quality.docs`)."""
    check_columns(table, contract, "the staging file does not match the contract; re-run the consume task of this run")
    table = with_duplicate_marks(table)
    frame = table.drop_columns([c for c in ("_raw",) if c in table.column_names]).to_pandas()
    frame[ROW_ID] = range(len(frame))
    batch_def, suite, specs = _gx_objects(contract)
    batch = batch_def.get_batch(batch_parameters={"dataframe": frame})
    result = batch.validate(
        suite, result_format={"result_format": "COMPLETE", "unexpected_index_column_names": [ROW_ID]}
    )
    if record is not None:
        record(result)
    failures: dict[int, set[str]] = {}
    for res in result.results:
        spec = specs[res.expectation_config.id]
        if res.exception_info and res.exception_info.get("raised_exception"):
            raise QualityError(
                f"expectation {spec.name} on {contract.id} could not run: "
                f"{res.exception_info.get('exception_message')}",
                hint="check the contract's expectation against the column's type",
            )
        rows = marked_rows(table, spec)
        if not res.success:
            if not spec.row_level:
                raise QualityError(
                    f"batch for {contract.id} failed {spec.name}",
                    hint="the batch does not match the contract's schema; see the GX result",
                )
            rows += [int(entry[ROW_ID]) for entry in res.result.get("unexpected_index_list") or []]
        for row in rows:
            failures.setdefault(row, set()).add(spec.name)
    order = {spec.name: i for i, spec in enumerate(specs.values())}
    ordered = {row: sorted(names, key=order.__getitem__) for row, names in sorted(failures.items())}
    return Verdict(failures=ordered, evaluated=len(frame), success=result.success and not failures)


_GX_CACHE: dict[Contract, tuple] = {}


def _gx_objects(contract: Contract):
    """One ephemeral GX context per dataset and process: building it costs ~1 s, validating ~0.1 s. Returns the
    batch definition, the suite, and each of the suite's expectations' spec by GX id."""
    if contract not in _GX_CACHE:
        import great_expectations as gx

        context = gx.get_context(mode="ephemeral")
        source = context.data_sources.add_pandas(name=f"cityhub_{contract.id}")
        asset = source.add_dataframe_asset(name=contract.id)
        batch_def = asset.add_batch_definition_whole_dataframe("batch")
        suite = context.suites.add(build_suite(contract))
        specs = expectation_specs(contract, required_columns(contract))
        by_id = {expectation.id: spec for spec, expectation in zip(specs, suite.expectations, strict=True)}
        _GX_CACHE[contract] = (batch_def, suite, by_id)
    return _GX_CACHE[contract]


def suite_for(contract: Contract):
    """The contract's GX ExpectationSuite, registered in its (cached) ephemeral context."""
    return _gx_objects(contract)[1]
