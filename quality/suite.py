"""Great Expectations suites generated from the catalog, and validation that returns row-level verdicts.

GX records failures but never raises; :func:`validate` turns its result into (a) the rows to quarantine with
the name of every expectation they failed, taken from GX's own ``unexpected_index_list``, and (b) a
:class:`QualityError` for batch-level failures, which make the run fail.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import pyarrow as pa

from catalog.contract import Contract
from infra.errors import QualityError

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

    @property
    def name(self) -> str:
        column = self.kwargs.get("column")
        return f"{self.type}({column})" if column else self.type


def expectation_specs(contract: Contract, decoded_columns: list[str]) -> list[ExpectationSpec]:
    """The suite for ``contract``: derived entirely from the contract's columns."""
    specs = [
        ExpectationSpec(
            "ExpectTableColumnsToMatchSet",
            {"column_set": decoded_columns, "exact_match": False},
            row_level=False,
        ),
        ExpectationSpec("ExpectColumnValuesToBeNull", {"column": "_decode_error"}),
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

    suite = gx.ExpectationSuite(name=f"cityhub.{contract.id}")
    for spec in expectation_specs(contract, required_columns(contract)):
        suite.add_expectation(getattr(gx.expectations, spec.type)(**spec.kwargs))
    return suite


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


def validate(table: pa.Table, contract: Contract) -> Verdict:
    """Run the contract's GX suite on ``table``; raise :class:`QualityError` on batch-level failure."""
    missing = [c for c in required_columns(contract) if c not in table.column_names]
    if missing:
        raise QualityError(
            f"batch for {contract.id} is unusable: columns {missing} are missing",
            hint="the staging file does not match the contract; re-run the consume task of this run",
        )
    frame = table.drop_columns([c for c in ("_raw",) if c in table.column_names]).to_pandas()
    frame[ROW_ID] = range(len(frame))
    batch_def, suite = _gx_objects(contract)
    batch = batch_def.get_batch(batch_parameters={"dataframe": frame})
    result = batch.validate(
        suite, result_format={"result_format": "COMPLETE", "unexpected_index_column_names": [ROW_ID]}
    )
    failures: dict[int, list[str]] = {}
    for res in result.results:
        config = res.expectation_config
        spec = ExpectationSpec(_class_name(config.type), dict(config.kwargs))
        if res.exception_info and res.exception_info.get("raised_exception"):
            raise QualityError(
                f"expectation {spec.name} on {contract.id} could not run: "
                f"{res.exception_info.get('exception_message')}",
                hint="check the contract's expectation against the column's type",
            )
        if res.success:
            continue
        if "column" not in config.kwargs:
            raise QualityError(
                f"batch for {contract.id} failed {spec.name}",
                hint="the batch does not match the contract's schema; see the GX result",
            )
        for entry in res.result.get("unexpected_index_list") or []:
            failures.setdefault(int(entry[ROW_ID]), []).append(spec.name)
    return Verdict(failures=failures, evaluated=len(frame), success=result.success)


_GX_CACHE: dict[Contract, tuple] = {}


def _gx_objects(contract: Contract):
    """One ephemeral GX context per dataset and process: building it costs ~1 s, validating ~0.1 s."""
    if contract not in _GX_CACHE:
        import great_expectations as gx

        context = gx.get_context(mode="ephemeral")
        source = context.data_sources.add_pandas(name=f"cityhub_{contract.id}")
        asset = source.add_dataframe_asset(name=contract.id)
        batch_def = asset.add_batch_definition_whole_dataframe("batch")
        _GX_CACHE[contract] = (batch_def, context.suites.add(build_suite(contract)))
    return _GX_CACHE[contract]


def _class_name(snake: str) -> str:
    return "".join(part.capitalize() for part in snake.split("_"))


def suite_for(contract: Contract):
    """The contract's GX ExpectationSuite, registered in its (cached) ephemeral context."""
    return _gx_objects(contract)[1]
