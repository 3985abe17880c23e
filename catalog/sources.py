"""Open-data sources that ``cityhub poll`` and the ``cityhub_poll`` DAG fetch and produce to a dataset's topic.

A URL may name ``{data_go_kr_key}``: it is filled from ``CITYHUB_DATA_GO_KR_KEY`` at fetch time, never stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True)
class PollSource:
    id: str
    dataset: str
    url: str
    description: str
    interval: timedelta = timedelta(hours=1)
    source_tz: str | None = None


SOURCES: tuple[PollSource, ...] = (
    PollSource(
        id="airkorea_nationwide",
        dataset="kr_air_quality",
        url="https://apis.data.go.kr/B552584/ArpltnInforInqireSvc/getCtprvnRltmMesureDnsty"
        "?serviceKey={data_go_kr_key}&returnType=json&numOfRows=1000&pageNo=1&sidoName=%EC%A0%84%EA%B5%AD&ver=1.0",
        description="AirKorea real-time readings of every station in Korea (data.go.kr B552584)",
        source_tz="Asia/Seoul",
    ),
)


def get_source(source_id: str) -> PollSource:
    for source in SOURCES:
        if source.id == source_id:
            return source
    from infra.errors import CatalogError

    raise CatalogError(
        f"unknown source {source_id!r}",
        hint=f"known sources: {', '.join(s.id for s in SOURCES)}; or give a URL or file path with --dataset",
    )
