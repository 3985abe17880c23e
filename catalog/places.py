"""Place names that contracts use as allowed values.

``SEOUL_DISTRICTS`` are Seoul's 25 autonomous districts (자치구), exactly as the ``ADDR_GU`` column of the Seoul
public-bike station list spells them (catalog/stations/seoul_bike.csv, see catalog/stations/SOURCES.md).
"""

SEOUL_DISTRICTS = (
    "강남구",
    "강동구",
    "강북구",
    "강서구",
    "관악구",
    "광진구",
    "구로구",
    "금천구",
    "노원구",
    "도봉구",
    "동대문구",
    "동작구",
    "마포구",
    "서대문구",
    "서초구",
    "성동구",
    "성북구",
    "송파구",
    "양천구",
    "영등포구",
    "용산구",
    "은평구",
    "종로구",
    "중구",
    "중랑구",
)
