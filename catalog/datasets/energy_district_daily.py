from catalog.datasets.energy_district_hourly import CONTRACT as HOURLY
from catalog.releases import SUPPRESSION_NOTE, daily_release

CONTRACT = daily_release(
    HOURLY,
    id="energy_district_daily",
    title_ko="자치구별 전력 사용량 (일별)",
    title_en="Electricity use per district, daily",
    description="Electricity recorded by smart meters per day (Asia/Seoul) and Seoul district, derived from the "
    "safe-zone dataset energy_usage; the daily release of energy_district_hourly (a day's readings and energy are "
    "the sums of its hours')." + SUPPRESSION_NOTE,
    entity_type="EnergyUsageDistrictDaily",
)
