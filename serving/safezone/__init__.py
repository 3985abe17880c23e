"""The data safe zone (데이터안심구역) reached through the API: approved projects, aggregate-only analysis under
disclosure control, reviewed export (반출) and a tamper-evident audit log. See README, *Data safe zone:
projects, analysis, export, audit*."""
