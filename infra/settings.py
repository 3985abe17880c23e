"""One settings object, read from ``CITYHUB_*`` environment variables, built on demand (never at import).

Every field is documented beside itself; ``tests/infra/test_settings.py`` checks README lists them all.
"""

from __future__ import annotations

import os
import secrets
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from infra.errors import ConfigError


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CITYHUB_", extra="ignore")

    home: Path = Field(Path("var"), description="Directory holding all state: lake, slices, Airflow, secrets.")
    kafka_bootstrap: str | None = Field(
        None,
        description="Kafka bootstrap servers (host:port,...). Unset: the embedded tansu broker is used.",
    )
    broker_port: int = Field(9092, description="Port of the embedded broker when cityhub starts one.")
    topic_prefix: str = Field("cityhub.", description="Prefix of every topic derived from the catalog.")
    topic_partitions: int = Field(3, description="Partitions of each topic cityhub creates.")
    consumer_group: str = Field("cityhub-landing", description="Consumer group whose offsets landing commits.")
    broker_wait_s: float = Field(
        120.0, description="How long `cityhub ingest --until-idle` retries an unreachable broker before giving up."
    )
    kafka_client: Literal["librdkafka", "kafka-python"] = Field(
        "librdkafka",
        description="Client landing fetches with: `librdkafka` (confluent-kafka, C, ~4x faster) or `kafka-python`.",
    )
    fetch_max_records: int = Field(
        25_000,
        description="Most messages decoded into one Arrow batch (and one file per zone and date). 25k keeps a "
        "2M-message backfill under 600 MB at the speed of 50k chunks.",
    )
    max_message_bytes: int = Field(
        1024 * 1024, description="Largest message landing parses; bigger ones are quarantined as oversized_message."
    )
    hmac_key: str | None = Field(
        None,
        description="Secret key for pseudonymising personal columns (HMAC-SHA256). Never written to the lake.",
    )
    hmac_key_file: Path | None = Field(
        None,
        description="File holding the HMAC key. Default: HOME/secrets/hmac.key, created on first use in dev.",
    )
    hmac_key_version: str = Field(
        "v1",
        description="Label of the HMAC key in use, stored beside each pseudonym (per row). Change it with the key: "
        "pseudonyms of two versions never match, so distinct persons are counted within one version.",
    )
    min_persons: int = Field(
        10,
        ge=2,
        description="Smallest group, in distinct persons, the safe zone treats as safe: the k-anonymity report of "
        "each landed partition counts the rows and persons in equivalence classes smaller than this, and the open "
        "datasets derived from safe-zone data suppress cells of fewer persons; so do safe-zone answers, and the "
        "differencing guard refuses an answer whose cells differ from earlier ones by fewer persons.",
    )
    log_format: Literal["text", "json"] = Field(
        "text", description="CLI log lines: `text` for people, `json` (one object per line) for log shippers."
    )
    api_host: str = Field("127.0.0.1", description="Address the API listens on.")
    api_port: int = Field(8000, description="Port the API listens on.")
    max_page_rows: int = Field(10_000, description="Largest `limit` a records query accepts.")
    query_timeout_s: float = Field(10.0, description="Time limit of one API query, enforced with interrupt().")
    rate_limit_per_min: int = Field(
        1200,
        ge=0,
        description="Requests a minute one API client (its `X-API-Key`, else its address) may make to `/api/` "
        "before answers turn 429; refilled continuously. 0 turns the limit off.",
    )
    extra_catalog_dirs: str = Field(
        "",
        description="Extra folders (os.pathsep-separated) of contract modules added to the built-in catalog.",
    )
    data_go_kr_key: str | None = Field(
        None, description="Service key of Korea's public data portal (data.go.kr), filled into source URLs."
    )
    source_urls: dict[str, str] = Field(
        default_factory=dict,
        description="Per-source URL overrides, a JSON object {source id: URL or file path}: fetch a catalog source "
        "(catalog/sources.py) from a mirror or a local copy instead.",
    )
    crash_point: str | None = Field(
        None,
        description="Test hook: `STEP[:N]` kills the landing or compacting process (SIGKILL) at the N-th time it "
        "reaches STEP (after_stage, after_file, after_ledger, after_commit; compact_after_file, "
        "compact_after_manifest, uncompact_after_manifest). Never set it in production.",
    )
    compaction_grace_s: float = Field(
        3600.0,
        gt=0,
        description="How long files replaced by compaction stay in place (still readable by a query that listed "
        "them before) before they are deleted; must be longer than query_timeout_s.",
    )
    cursor_ttl_s: float = Field(
        1800.0,
        gt=0,
        description="How long a /records cursor (the snapshot of live lake files its first page pinned) stays "
        "usable; later it answers 410. Capped at compaction_grace_s - query_timeout_s, so that no file a "
        "snapshot lists can have been deleted by compaction while a page reads it.",
    )
    download_timeout_s: float = Field(
        900.0,
        gt=0,
        description="Time limit of one /download stream as a whole (the count before it has query_timeout_s); "
        "past it the query is interrupted and the connection aborted. Keep it below compaction_grace_s.",
    )
    download_sort_rows: int = Field(
        100_000,
        ge=1_000,
        description="Rows DuckDB sorts at once for a /download in event-time order. Each date partition is sorted on "
        "its own; a day with more matching rows than this is read in equal time windows of about this many rows "
        "(row groups outside a window are skipped by their statistics). Lower: less server memory, more reads.",
    )
    airflow_home: Path | None = Field(None, description="AIRFLOW_HOME for cityhub's Airflow. Default: HOME/airflow.")
    data_docs_keep: int = Field(
        50,
        ge=1,
        description="GX validation results kept per dataset in the Data Docs under /quality/ (older ones are "
        "dropped when a run adds its own; GX's index build re-reads all that are kept).",
    )

    database_url: str | None = Field(
        None,
        description="Database of the safe zone's state (orgs, users, keys, projects, answers, exports, audit log), "
        "an SQLAlchemy URL such as `postgresql://user:pass@host/db`. Unset: SQLite at HOME/state/safezone.db.",
    )
    safezone_max_days: int = Field(25, ge=1, description="Longest period, in days, a safe-zone project may ask for.")
    safezone_dominance_one: float = Field(
        0.5, gt=0, le=1, description="Dominance rule: a sum cell is suppressed when its largest contributor has more."
    )
    safezone_dominance_two: float = Field(
        0.67,
        gt=0,
        le=1,
        description="Dominance rule: a sum cell is suppressed when its two largest contributors have more.",
    )
    safezone_export_redact_max: int = Field(
        7, ge=0, description="Export (반출) rule: a cell counting this many or fewer (rows or persons) is redacted."
    )
    safezone_export_round: int = Field(
        5, ge=1, description="Export (반출) rule: counts are rounded to a multiple of this."
    )
    safezone_export_max_rows: int = Field(10_000, ge=1, description="Most rows an export may have (its CSV's cap).")
    safezone_max_cells: int = Field(5_000, ge=1, description="Most cells one safe-zone answer may have.")
    safezone_query_timeout_s: float = Field(
        5.0, gt=0, description="Time limit of one safe-zone query in its sandbox, enforced with interrupt()."
    )
    safezone_memory_limit: str = Field("512MB", description="DuckDB memory_limit of each safe-zone query sandbox.")
    safezone_threads: int = Field(1, ge=1, description="DuckDB threads of each safe-zone query sandbox.")

    @cached_property
    def root(self) -> Path:
        return self.home.resolve()

    @property
    def lake(self) -> Path:
        return self.root / "lake"

    @property
    def state(self) -> Path:
        return self.root / "state"

    @property
    def airflow_dir(self) -> Path:
        return (self.airflow_home or self.root / "airflow").resolve()

    @property
    def cursor_lifetime_s(self) -> float:
        """How long a snapshot may be read: the TTL, but never past the time compaction may delete its files."""
        return max(0.0, min(self.cursor_ttl_s, self.compaction_grace_s - self.query_timeout_s))

    @property
    def bootstrap(self) -> str:
        return self.kafka_bootstrap or f"127.0.0.1:{self.broker_port}"

    @property
    def uses_embedded_broker(self) -> bool:
        return not self.kafka_bootstrap

    def topic_for(self, dataset_id: str) -> str:
        return f"{self.topic_prefix}{dataset_id}"

    def dead_letter_topic_for(self, dataset_id: str) -> str:
        """Where producers put records they could not deliver properly; landing quarantines all of them."""
        return f"{self.topic_prefix}dlq.{dataset_id}"

    def pseudonym_key(self) -> bytes:
        """The HMAC key: from the variable, else the key file (created with a random key in dev)."""
        if self.hmac_key:
            return self.hmac_key.encode()
        path = self.hmac_key_file or self.root / "secrets" / "hmac.key"
        if not path.exists():
            if self.hmac_key_file is not None:
                raise ConfigError(
                    f"HMAC key file {path} does not exist",
                    hint="create it with a random secret, or unset CITYHUB_HMAC_KEY_FILE to use the dev default",
                )
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_hex(32))
        key = path.read_text().strip()
        if len(key) < 16:
            raise ConfigError(f"HMAC key in {path} is too short", hint="use at least 16 random characters")
        return key.encode()


def get_settings() -> Settings:
    return Settings()
