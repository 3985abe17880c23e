"""The typed dataset contract: each dataset is declared once, everything else is derived from it.

Topics, Airflow DAGs, GX suites, DuckDB views, API listings and the simulator all read these objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal

import pyarrow as pa

from infra.errors import ContractError

Tier = Literal["open", "safezone"]
Kind = Literal["string", "float", "int", "bool", "timestamp", "date", "entity_id", "lon", "lat"]
Handling = Literal["hmac", "drop"]
# How a quasi-identifier is coarsened wherever rows could leave the safe zone (transforms/generalise.py):
# coordinates to a 250 m grid cell or the district, times to the 15-minute bucket, ages to 5-year bands.
Generalisation = Literal["cell_250m", "district", "bucket_15min", "age_5y"]
_GENERALISES: dict[str, tuple[str, ...]] = {  # which generalisations suit which kind of column
    "cell_250m": ("lon", "lat"),
    "district": ("lon", "lat"),
    "bucket_15min": ("timestamp",),
    "age_5y": ("int",),
}
# A pseudonymised column is stored dictionary-encoded: one 64-character digest per person, not per row.
PSEUDONYM_TYPE = pa.dictionary(pa.int32(), pa.string())
KEY_VERSION = "_pseudonym_key_version"

KAFKA_TIMESTAMP = "@kafka_timestamp"  # a source meaning "the Kafka record's timestamp"

_ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "entity_id": pa.string(),
    "float": pa.float64(),
    "lon": pa.float64(),
    "lat": pa.float64(),
    "int": pa.int64(),
    "bool": pa.bool_(),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "date": pa.date32(),  # a calendar day (derived datasets: the city's day)
}

# Lineage carried by every landed row: where in Kafka it came from.
LINEAGE_FIELDS = [
    pa.field("_topic", pa.string(), nullable=False),
    pa.field("_partition", pa.int32(), nullable=False),
    pa.field("_offset", pa.int64(), nullable=False),
    pa.field("_kafka_ts", pa.timestamp("ms", tz="UTC")),
]


@dataclass(frozen=True)
class Column:
    """One column of a dataset, and where in an incoming entity its value comes from."""

    name: str
    kind: Kind
    sources: tuple[str, ...] = ()  # entity attributes ("a" or "a.b"), first non-null wins; default: name
    description: str = ""
    unit: str | None = None  # UN/CEFACT code as FIWARE uses (GQ = µg/m³, GP = mg/m³, CEL = °C, ...)
    minimum: float | None = None
    maximum: float | None = None
    required: bool = False
    allowed: tuple[str, ...] | None = None
    personal: Handling | None = None  # how a personal column (direct identifier) is handled before any write
    # A quasi-identifier: not identifying alone, but in combination (place, time, age). ``generalise`` says how
    # it is coarsened (and implies ``quasi_identifier``); a quasi-identifier without it is coarse already.
    quasi_identifier: bool = False
    generalise: Generalisation | None = None
    time_format: str | None = None  # strptime format of a timestamp that is not ISO 8601, e.g. "%d/%m/%Y"
    hour_from: str | None = None  # attribute holding the hour of day to add (date and hour sent apart)

    @property
    def arrow_type(self) -> pa.DataType:
        return _ARROW_TYPES[self.kind]

    @property
    def stored_type(self) -> pa.DataType:
        """The type in the lake: pseudonyms dictionary-encoded, everything else as decoded."""
        return PSEUDONYM_TYPE if self.personal == "hmac" else self.arrow_type

    @property
    def source_paths(self) -> tuple[str, ...]:
        return self.sources or (self.name,)

    @property
    def is_quasi_identifier(self) -> bool:
        return self.quasi_identifier or self.generalise is not None

    @property
    def generalised_name(self) -> str:
        """The column a generalised table holds in its place: a coordinate pair becomes one column named after
        the pair's prefix (``start_lon``/``start_lat`` → ``start_district``), an age ``<name>_band``; a time
        keeps its name (floored); an undeclared column is unchanged."""
        if self.generalise in ("cell_250m", "district"):
            return self.name[:-3] + self.generalise
        if self.generalise == "age_5y":
            return f"{self.name}_band"
        return self.name

    @property
    def partner(self) -> str | None:
        """The other half of a coordinate pair (``x_lon`` ↔ ``x_lat``), by the naming convention."""
        if self.kind == "lon":
            return self.name[:-3] + "lat"
        if self.kind == "lat":
            return self.name[:-3] + "lon"
        return None


@dataclass(frozen=True)
class Contract:
    """A dataset contract. ``id`` names the topic, DAG, suite, view and API route."""

    id: str
    title_ko: str
    title_en: str
    description: str
    entity_type: str  # NGSI type of the incoming entities, e.g. "AirQualityObserved"
    tier: Tier
    columns: tuple[Column, ...]
    key_columns: tuple[str, ...]
    event_time: str
    source_tz: str = "Asia/Seoul"
    licence: str = "KOGL Type 1 (공공누리 제1유형: 출처표시)"
    cadence: timedelta = timedelta(hours=1)
    horizon: timedelta | None = None  # readings older than this (vs. their Kafka timestamp) are quarantined
    # How long each zone keeps a date partition (by event date); None keeps it. Quarantine is for fixing and
    # replaying, not an archive; safe-zone rows are kept no longer than their purpose needs.
    retention: tuple[tuple[str, timedelta | None], ...] = (("clean", None), ("quarantine", timedelta(days=90)))
    volume_bounds: tuple[float, float] = (0.5, 2.0)  # a run's rows vs the trailing mean of earlier runs
    volume_window: int = 7  # how many earlier runs make the trailing mean
    missing_markers: tuple[str, ...] = ()  # text values that mean "no value", e.g. "-" on Korean portals
    # The pseudonymised column whose distinct values are the data subjects (rider, household): the k-anonymity
    # report counts equivalence classes in distinct values of it, within one key version.
    person_column: str | None = None
    keywords: tuple[str, ...] = field(default_factory=tuple)
    # Provenance of a derived dataset: the id of the (safe-zone) dataset it is computed from. A derived dataset
    # is not landed from Kafka (no topic, no landing DAG, no lineage columns): ``ingest/derived.py`` builds it
    # from the source's clean zone, and the API serves it like any other dataset of its tier.
    derived_from: str | None = None

    def __post_init__(self) -> None:
        names = [c.name for c in self.columns]
        missing = [k for k in (*self.key_columns, self.event_time) if k not in names]
        if missing:
            raise ContractError(
                f"contract {self.id}: key/event-time columns {missing} are not declared columns",
                hint="declare them in columns=, or fix the names",
            )
        if len(set(names)) != len(names):
            raise ContractError(f"contract {self.id}: duplicate column names", hint="give every column its own name")
        for column in self.columns:
            self._check_quasi_identifier(column)
        self._check_person_column()
        self._check_derived()

    def _check_derived(self) -> None:
        if self.derived_from is None:
            return
        if self.personal_columns or self.person_column or self.quasi_identifiers:
            raise ContractError(
                f"contract {self.id}: a derived dataset holds aggregates, never personal columns or row-level "
                "quasi-identifiers",
                hint="publish counts per group; the source dataset keeps the pseudonyms",
            )
        if self.event_time not in self.key_columns:
            raise ContractError(
                f"contract {self.id}: a derived dataset's key must name its time bucket {self.event_time!r}",
                hint="key_columns: the time bucket and the groups, unique per cell (the API pages by them)",
            )
        if self.derived_from == self.id:
            raise ContractError(f"contract {self.id}: derived from itself", hint="name the source dataset's id")

    def _check_quasi_identifier(self, column: Column) -> None:
        where = f"contract {self.id}, column {column.name}"
        if column.is_quasi_identifier and column.personal:
            raise ContractError(
                f"{where}: a personal column (a direct identifier) cannot also be a quasi-identifier",
                hint="pseudonymise or drop it (personal=...), or declare it a quasi-identifier, not both",
            )
        if column.generalise is None:
            return
        suits = _GENERALISES[column.generalise]
        if column.kind not in suits:
            raise ContractError(
                f"{where}: {column.generalise!r} generalises {' or '.join(suits)} columns, not {column.kind!r}",
                hint="coordinates: cell_250m or district; timestamps: bucket_15min; ages (int): age_5y",
            )
        if column.partner is not None:
            self._check_pair(column, where)
        clash = column.generalised_name != column.name and column.generalised_name in [c.name for c in self.columns]
        if clash:
            raise ContractError(
                f"{where}: its generalised column {column.generalised_name!r} is already a declared column",
                hint="rename one of them",
            )

    def _check_pair(self, column: Column, where: str) -> None:
        """Coordinates are generalised as a pair: ``<prefix>lon`` and ``<prefix>lat``, declared alike."""
        names = {c.name: c for c in self.columns}
        partner = names.get(column.partner or "")
        if not column.name.endswith(column.kind) or partner is None or partner.generalise != column.generalise:
            raise ContractError(
                f"{where}: a generalised coordinate needs its partner {column.partner!r} generalised the same way",
                hint="name the pair <prefix>lon and <prefix>lat and give both the same generalise=",
            )

    def _check_person_column(self) -> None:
        if self.person_column is None:
            return
        column = {c.name: c for c in self.columns}.get(self.person_column)
        if column is None or column.personal != "hmac":
            raise ContractError(
                f"contract {self.id}: person_column {self.person_column!r} is not a pseudonymised column",
                hint="name a column declared with personal='hmac' (a dropped column never reaches the lake)",
            )

    @property
    def dag_id(self) -> str:
        """The Airflow DAG generated for this dataset: its landing DAG, or for a derived dataset the DAG that
        derives every open dataset of its source (``dags/cityhub_derived.py``)."""
        if self.derived_from:
            return f"cityhub_derive_{self.derived_from}"
        return f"cityhub_{self.id}"

    @property
    def is_derived(self) -> bool:
        return self.derived_from is not None

    @property
    def order_columns(self) -> tuple[str, ...]:
        """A unique order of the dataset's rows (the API's keyset pages): event time, then the Kafka position of
        a landed row, or the key columns of a derived one."""
        if self.derived_from:
            return (self.event_time, *(k for k in self.key_columns if k != self.event_time))
        return (self.event_time, "_topic", "_partition", "_offset")

    @property
    def identity(self) -> tuple[str, ...]:
        """What makes two rows the same reading: the key columns and the event time (unique in the clean zone)."""
        return tuple(dict.fromkeys((*self.key_columns, self.event_time)))  # a derived key holds its time already

    @property
    def is_open(self) -> bool:
        return self.tier == "open"

    @property
    def personal_columns(self) -> tuple[Column, ...]:
        return tuple(c for c in self.columns if c.personal)

    @property
    def quasi_identifiers(self) -> tuple[Column, ...]:
        return tuple(c for c in self.columns if c.is_quasi_identifier)

    @property
    def stored_columns(self) -> tuple[Column, ...]:
        """Columns that reach the lake (dropped personal columns never do)."""
        return tuple(c for c in self.columns if c.personal != "drop")

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)

    @property
    def schema(self) -> pa.Schema:
        """The clean zone's schema: contract columns, then lineage (a derived dataset: its columns only)."""
        fields = [pa.field(c.name, c.stored_type) for c in self.stored_columns]
        if self.derived_from:
            return pa.schema(fields)
        if self.personal_columns:
            fields.append(pa.field(KEY_VERSION, pa.string()))  # per row: the key each pseudonym was made with
        return pa.schema(fields + LINEAGE_FIELDS)

    @property
    def quarantine_schema(self) -> pa.Schema:
        """Quarantine keeps the decoded row, why it failed, and (open data only) the raw payload."""
        extra = [pa.field("_reason", pa.string(), nullable=False)]
        if self.is_open:
            extra.append(pa.field("_raw", pa.string()))
        return pa.schema(list(self.schema) + extra)
