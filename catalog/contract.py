"""The typed dataset contract: each dataset is declared once, everything else is derived from it.

Topics, Airflow DAGs, GX suites, DuckDB views, API listings and the simulator all read these objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal

import pyarrow as pa

Tier = Literal["open", "safezone"]
Kind = Literal["string", "float", "int", "bool", "timestamp", "entity_id", "lon", "lat"]
Handling = Literal["hmac", "drop"]

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
    personal: Handling | None = None  # how a personal column is handled before anything is written
    time_format: str | None = None  # strptime format of a timestamp that is not ISO 8601, e.g. "%d/%m/%Y"
    hour_from: str | None = None  # attribute holding the hour of day to add (date and hour sent apart)

    @property
    def arrow_type(self) -> pa.DataType:
        return _ARROW_TYPES[self.kind]

    @property
    def source_paths(self) -> tuple[str, ...]:
        return self.sources or (self.name,)


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
    keywords: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        names = [c.name for c in self.columns]
        missing = [k for k in (*self.key_columns, self.event_time) if k not in names]
        if missing:
            raise ValueError(f"contract {self.id}: key/event-time columns {missing} are not declared columns")
        if len(set(names)) != len(names):
            raise ValueError(f"contract {self.id}: duplicate column names")

    @property
    def dag_id(self) -> str:
        """The Airflow DAG generated for this dataset."""
        return f"cityhub_{self.id}"

    @property
    def identity(self) -> tuple[str, ...]:
        """What makes two rows the same reading: the key columns and the event time (unique in the clean zone)."""
        return (*self.key_columns, self.event_time)

    @property
    def is_open(self) -> bool:
        return self.tier == "open"

    @property
    def personal_columns(self) -> tuple[Column, ...]:
        return tuple(c for c in self.columns if c.personal)

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
        """The clean zone's schema: contract columns, then lineage."""
        fields = [pa.field(c.name, c.arrow_type) for c in self.stored_columns]
        if self.personal_columns:
            fields.append(pa.field("_pseudonym_key_version", pa.string()))
        return pa.schema(fields + LINEAGE_FIELDS)

    @property
    def quarantine_schema(self) -> pa.Schema:
        """Quarantine keeps the decoded row, why it failed, and (open data only) the raw payload."""
        extra = [pa.field("_reason", pa.string(), nullable=False)]
        if self.is_open:
            extra.append(pa.field("_raw", pa.string()))
        return pa.schema(list(self.schema) + extra)
