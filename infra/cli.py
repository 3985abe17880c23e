"""The ``cityhub`` command line. Every setting comes from ``CITYHUB_*`` variables (see README)."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from datetime import datetime
from pathlib import Path

from infra.errors import CityhubError
from infra.logs import setup as setup_logging
from infra.settings import Settings, get_settings

log = logging.getLogger("cityhub")


def cmd_datasets(args: argparse.Namespace, settings: Settings) -> int:
    from catalog import all_contracts

    rows = [
        {
            "id": c.id,
            "tier": c.tier,
            "topic": f"(derived from {c.derived_from})" if c.is_derived else settings.topic_for(c.id),
            "title_en": c.title_en,
            "title_ko": c.title_ko,
            "columns": [f.name for f in c.stored_columns],
        }
        for c in all_contracts()
    ]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return 0
    width = max(len(r["id"]) for r in rows)
    print(f"{'id':<{width}} {'tier':<9} {'topic':<30} title")
    for r in rows:
        print(f"{r['id']:<{width}} {r['tier']:<9} {r['topic']:<30} {r['title_en']} / {r['title_ko']}")
        print(f"{'':<{width}} columns: {', '.join(r['columns'])}")
    return 0


def cmd_broker(args: argparse.Namespace, settings: Settings) -> int:
    from infra.broker import EmbeddedBroker

    broker = EmbeddedBroker(args.port or settings.broker_port).start()
    print(f"embedded broker (tansu, in-memory) listening on {broker.bootstrap}; Ctrl-C stops it", flush=True)
    try:
        return broker.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        broker.stop()


def cmd_topics(args: argparse.Namespace, settings: Settings) -> int:
    from catalog import landed_contracts
    from infra.kafka import ensure_topics

    created = ensure_topics(settings, [settings.topic_for(c.id) for c in landed_contracts()])
    print(f"created {len(created)} topic(s): {', '.join(created) or '-'}")
    return 0


def cmd_produce(args: argparse.Namespace, settings: Settings) -> int:
    from catalog import get_contract
    from ingest.produce import records_from_file, send
    from ingest.simulate import simulate

    contract = get_contract(args.dataset)
    if args.file:
        records = records_from_file(Path(args.file))
        sent = len(send(settings, contract, records, source_tz=args.source_tz))
        print(f"{contract.id}: sent {sent} record(s) from {args.file}")
        return 0
    if args.count is None:
        raise CityhubError("give --count N (simulated readings) or --file PATH (real payloads)", status=2, code="usage")
    start = datetime.fromisoformat(args.start) if args.start else None
    records, planted = simulate(contract, args.count, seed=args.seed, bad_ratio=args.bad_ratio, start=start)
    sent = len(send(settings, contract, records, source_tz=args.source_tz))
    bad = ", ".join(f"{k}={v}" for k, v in sorted(planted.items())) or "none"
    print(f"{contract.id}: sent {sent} simulated record(s) (seed {args.seed}); bad records planted: {bad}")
    return 0


def cmd_airflow(args: argparse.Namespace, settings: Settings) -> int:
    from infra.standalone import run_standalone

    return run_standalone(settings, args.port)


def cmd_ingest(args: argparse.Namespace, settings: Settings) -> int:
    from ingest.runner import ingest_loop

    totals = ingest_loop(
        settings, args.datasets, until_idle=args.until_idle, interval_s=args.interval, group=args.group
    )
    for dataset, (clean, quarantined) in totals.items():
        print(f"{dataset}: landed {clean} clean row(s), quarantined {quarantined}")
    return 0


def cmd_offsets(args: argparse.Namespace, settings: Settings) -> int:
    from ingest.offsets import reset_offsets, show_offsets

    if args.action == "replay":
        from catalog import get_contract
        from ingest.replay import replay_from_time

        if not (args.dataset and args.from_time):
            raise CityhubError("replay needs a DATASET and --from-time T", status=2, code="usage")
        result = replay_from_time(settings, get_contract(args.dataset), datetime.fromisoformat(args.from_time))
        print(
            f"{args.dataset}: replayed {result.clean_rows} clean and {result.quarantined_rows} quarantined row(s)"
            f" into {len(result.files)} file(s)"
        )
        return 0
    if args.action == "reset":
        reset_offsets(settings, args.dataset, to_start=True)
    for row in show_offsets(settings, args.dataset):
        print(
            "{dataset:<16} p{partition:<3} committed={committed:<8} end={end:<8} landed={landed:<8} lag={lag}".format(
                **row
            )
        )
    return 0


def cmd_quarantine(args: argparse.Namespace, settings: Settings) -> int:
    from catalog import get_contract
    from ingest.replay import quarantine_summary, replay_quarantine

    contract = get_contract(args.dataset)
    if args.action == "replay":
        result = replay_quarantine(settings, contract)
        print(
            f"{contract.id}: re-landed the chunks with quarantined rows: now {result.clean_rows} clean, "
            f"{result.quarantined_rows} still quarantined"
        )
    for reason, count in quarantine_summary(settings, contract):
        print(f"{count:>8}  {reason}")
    return 0


def cmd_compact(args: argparse.Namespace, settings: Settings) -> int:
    from datetime import UTC, date

    from catalog import get_contract, landed_contracts
    from ingest.compaction import compact_dataset

    only = None
    if args.date:
        try:
            only = date.fromisoformat(args.date)
        except ValueError:
            raise CityhubError(
                f"--date {args.date!r} is not a date", hint="give it as YYYY-MM-DD", status=2, code="usage"
            ) from None
    contracts = [get_contract(args.dataset)] if args.dataset else landed_contracts()
    today = datetime.now(UTC).date()
    for contract in contracts:
        result = compact_dataset(settings, contract, today, only)
        for part in result.compacted:
            print(
                f"{contract.id}: {part['zone']} date={part['date']}: {part['merged']} files -> {part['file']} "
                f"({part['rows']} rows)"
            )
        if result.deleted:
            print(f"{contract.id}: deleted {len(result.deleted)} retired file(s) past the grace period")
    return 0


def cmd_poll(args: argparse.Namespace, settings: Settings) -> int:
    from catalog.sources import PollSource, get_source
    from ingest.poll import poll

    if args.dataset:
        source = PollSource(
            id=args.source.rstrip("/").rsplit("/", 1)[-1] or "source",
            dataset=args.dataset,
            url=args.source,
            description="given on the command line",
            source_tz=args.source_tz,
        )
    else:
        source = get_source(args.source)
    result = poll(settings, source)
    print(f"{result.source}: {result.status}" + (f", {result.records} record(s)" if result.records else ""))
    return 0


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from serving.app import create_app

    print(f"serving on http://{settings.api_host}:{args.port or settings.api_port}", flush=True)
    uvicorn.run(create_app(settings), host=settings.api_host, port=args.port or settings.api_port, log_level="warning")
    return 0


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from infra.demo import run_demo

    return run_demo(settings, once=args.once, port=args.port)


def cmd_bench(args: argparse.Namespace, settings: Settings) -> int:
    from bench.run import run_bench

    result = run_bench(settings, args.suite, rows=args.rows)
    print(json.dumps(result, indent=2) if args.json else "\n".join(f"{k}: {v}" for k, v in result.items()))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cityhub", description="cityhub: smart-city data hub")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("datasets", help="list the catalog")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_datasets)

    p = sub.add_parser("broker", help="run the embedded Kafka-compatible broker in the foreground")
    p.add_argument("--port", type=int)
    p.set_defaults(func=cmd_broker)

    p = sub.add_parser("topics", help="create every catalog topic that does not exist yet")
    p.set_defaults(func=cmd_topics)

    p = sub.add_parser("produce", help="send simulated readings or replay real payloads")
    p.add_argument("dataset")
    p.add_argument("--count", type=int)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--bad-ratio", type=float, default=0.0)
    p.add_argument("--start", help="ISO time of the first simulated reading (default: last full hour)")
    p.add_argument("--file", help="JSON lines, a JSON array or NGSI entities to replay")
    p.add_argument("--source-tz", help="zone of timestamps that carry none (default: the contract's)")
    p.set_defaults(func=cmd_produce)

    p = sub.add_parser("airflow", help="run Airflow standalone (UI, scheduler, triggerer) on the project's DAGs")
    p.add_argument("--port", type=int, default=8080, help="port of Airflow's UI and API server")
    p.set_defaults(func=cmd_airflow)

    p = sub.add_parser("ingest", help="land what is on the topics")
    p.add_argument("datasets", nargs="*")
    p.add_argument("--until-idle", action="store_true", help="exit once caught up")
    p.add_argument("--interval", type=float, default=5.0, help="seconds between polls when running on")
    p.add_argument(
        "--group",
        action="store_true",
        help="join the landing consumer group and land only the partitions it assigns, so that several "
        "ingest processes split the work (joining takes ~20 s on the embedded broker)",
    )
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("offsets", help="show, reset or replay the landing consumer group's offsets")
    p.add_argument("action", choices=["show", "reset", "replay"])
    p.add_argument("dataset", nargs="?")
    p.add_argument("--from-time", help="replay: re-land what Kafka received from this time on (ISO, with zone)")
    p.set_defaults(func=cmd_offsets)

    p = sub.add_parser("quarantine", help="quarantined rows per reason; replay them after a fix")
    p.add_argument("action", choices=["show", "replay"])
    p.add_argument("dataset")
    p.set_defaults(func=cmd_quarantine)

    p = sub.add_parser("compact", help="merge the small files of closed date partitions into one file each")
    p.add_argument("dataset", nargs="?", help="default: every dataset")
    p.add_argument("--date", help="compact only this closed date partition (YYYY-MM-DD, before today in UTC)")
    p.set_defaults(func=cmd_compact)

    p = sub.add_parser("poll", help="fetch an open-data source and produce its records unless unchanged")
    p.add_argument("source", help="a source id from catalog/sources.py, or a URL or file with --dataset")
    p.add_argument("--dataset", help="dataset whose topic receives the records (for a URL or file)")
    p.add_argument("--source-tz", help="zone of timestamps that carry none")
    p.set_defaults(func=cmd_poll)

    p = sub.add_parser("serve", help="serve the API")
    p.add_argument("--port", type=int)
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("demo", help="broker, topics, an hour of every feed, the DAGs, then the API")
    p.add_argument("--once", action="store_true", help="check the API, print a summary and exit")
    p.add_argument("--port", type=int)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("bench", help="measure throughput against baselines in the same run")
    p.add_argument("suite", choices=["ingest", "transforms", "serve"])
    p.add_argument(
        "--records",
        "--rows",
        dest="rows",
        type=int,
        default=None,
        help="default: 200000 (ingest, transforms), 10M (serve)",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_bench)

    from serving.safezone.cli import add_parsers as add_safezone_parsers

    add_safezone_parsers(sub)
    return parser


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # SIGTERM (systemd, docker stop, kill) unwinds like Ctrl-C, so brokers and servers are stopped cleanly.
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        settings = get_settings()
        setup_logging(args.verbose, settings.log_format)
        return args.func(args, settings)
    except CityhubError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        return exc.status if exc.status < 100 else 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
