"""The contract's row-level expectations evaluated with ``pyarrow.compute``, for the streaming ingest.

Great Expectations is the reference: the DAGs validate every batch with the GX suite from
:mod:`quality.suite`. Converting each batch to pandas for GX costs more than fetching it from Kafka, so
``cityhub ingest`` evaluates the very same :class:`~quality.suite.ExpectationSpec` list as Arrow kernels
instead. The rows each path quarantines, and the expectation names they give, are the same; a test runs
both on the same batches to keep it so.
"""

from __future__ import annotations

from functools import reduce

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from catalog.contract import Contract
from infra.errors import QualityError
from quality.suite import (
    DECODE_CHECK,
    ExpectationSpec,
    check_columns,
    expectation_specs,
    required_columns,
    with_duplicate_marks,
)
from transforms.dedupe import repeated_rows


def _not_unique(spec: ExpectationSpec, table: pa.Table) -> pa.ChunkedArray:
    """Like GX's compound uniqueness on its row condition: every copy of a repeated combination fails (rows
    with a missing value are skipped), and so does every row marked as a later copy."""
    columns = spec.kwargs.get("column_list") or [spec.kwargs["column"]]
    checks = [pc.is_null(table.column(c)) for c in spec.where_null] + [pc.is_valid(table.column(c)) for c in columns]
    eligible = reduce(pc.and_, checks)
    index = pa.array(np.arange(table.num_rows, dtype=np.int64))
    rows = table.select(columns).append_column("_i", index).filter(eligible)
    failed = pa.array(np.zeros(table.num_rows, dtype=bool))
    # The packed identities of transforms.dedupe: a NumPy sort, ~3x cheaper than Arrow's hash group-by and
    # join on a string key and a time.
    repeated = repeated_rows(rows, columns)
    if repeated is not None:
        if repeated.any():
            failed = pc.is_in(index, value_set=rows.column("_i").filter(pa.array(repeated)).combine_chunks())
    else:
        counts = rows.group_by(columns).aggregate([("_i", "count")])
        if counts.num_rows < rows.num_rows:  # only then is there a repeat to find (usually there is none)
            repeated_index = rows.join(counts, columns).filter(pc.field("_i_count") > 1).column("_i")
            failed = pc.is_in(index, value_set=repeated_index.combine_chunks())
    if spec.marked_by is not None:
        failed = pc.or_(failed, pc.fill_null(table.column(spec.marked_by), False))
    # not pa.chunked_array([failed]) when failed is chunked already: that reads it back as Python scalars
    # (~1 µs a row, most of these checks' time)
    return failed if isinstance(failed, pa.ChunkedArray) else pa.chunked_array([failed])


def _failed(spec: ExpectationSpec, table: pa.Table) -> pa.ChunkedArray:
    """Rows failing ``spec``; like GX, a null fails only the null checks."""
    kind, kwargs = spec.type, spec.kwargs
    if kind in ("ExpectCompoundColumnsToBeUnique", "ExpectColumnValuesToBeUnique"):
        return _not_unique(spec, table)
    column = table.column(kwargs["column"])
    if kind == "ExpectColumnValuesToBeNull":
        return pc.is_valid(column)
    if kind == "ExpectColumnValuesToNotBeNull":
        return pc.is_null(column)
    if kind == "ExpectColumnValuesToBeBetween":
        low, high = kwargs.get("min_value"), kwargs.get("max_value")
        checks = []
        if low is not None:
            checks.append(pc.less(column, pa.scalar(low).cast(column.type)))
        if high is not None:
            checks.append(pc.greater(column, pa.scalar(high).cast(column.type)))
        failed = checks[0] if len(checks) == 1 else pc.or_(*checks)
        return pc.fill_null(failed, False)
    if kind == "ExpectColumnValuesToBeInSet":
        allowed = pa.array(kwargs["value_set"], column.type)
        return pc.and_(pc.is_valid(column), pc.invert(pc.is_in(column, value_set=allowed)))
    raise QualityError(f"no Arrow evaluation for expectation {spec.type}", hint="add it to quality/rules.py")


def row_reasons(table: pa.Table, contract: Contract) -> pa.ChunkedArray:
    """Per row: the failed expectations joined by ``;`` (null for a clean row), as GX would name them."""
    check_columns(table, contract, "the decoded batch does not match the contract")
    table = with_duplicate_marks(table)
    specs = [spec for spec in expectation_specs(contract, required_columns(contract)) if spec.row_level]
    failures = [_failed(spec, table) for spec in specs]
    failing = pc.indices_nonzero(reduce(pc.or_kleene, failures)) if failures else pa.array([], pa.uint64())
    if not len(failing):
        return pa.chunked_array([pa.nulls(table.num_rows, pa.string())])
    # Labels only for the failing rows (usually ~1 %): building a string column per expectation over the whole
    # batch cost more than evaluating the expectations.
    no_reason = pa.scalar(None, pa.string())
    labels = []
    for spec, failed in zip(specs, failures, strict=True):
        if spec.name == DECODE_CHECK:  # the decode problem's kind (never a value) is named with it
            errors = table.column("_decode_error").take(failing).cast(pa.string())
            label = pc.binary_join_element_wise(f"{spec.name}=", errors, "")
        else:
            label = pa.scalar(spec.name)
        labels.append(pc.if_else(failed.take(failing), label, no_reason))
    # null_handling="skip" would be the natural choice, but pyarrow 26 drops the rows where every input is
    # null (the result comes out shorter than the table); join with "" and tidy the separators instead.
    joined = pc.binary_join_element_wise(*labels, ";", null_handling="replace", null_replacement="")
    joined = pc.utf8_trim(pc.replace_substring_regex(joined, ";;+", ";"), ";")
    # back to one entry per row: every other row points at the null appended after the failing rows' reasons
    slot = np.full(table.num_rows, len(failing), np.int64)
    slot[failing.to_numpy()] = np.arange(len(failing))
    reasons = pa.concat_arrays([joined.combine_chunks(), pa.nulls(1, pa.string())]).take(pa.array(slot))
    return pa.chunked_array([reasons])
