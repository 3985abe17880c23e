"""``cityhub bench ingest``: landing throughput against baselines measured in the same run.

Every path reads the same records, produced beforehand to a fresh embedded broker, with the same fetch
settings; each runs in a subprocess of its own (so its peak RSS is its own), best of ``repeat`` runs:

* ``raw_fetch``: kafka-python fetching every record and doing nothing else — the client's ceiling;
* ``naive``: kafka-python, ``json.loads`` per record, a pandas DataFrame and ``to_parquet`` per 10k records;
* ``librdkafka_naive``: the same naive pipeline on confluent-kafka (librdkafka) — what a speed-minded user
  writes instead;
* ``end_to_end``: one ``cityhub ingest --until-idle`` process, Kafka to validated, landed Parquet;
* ``end_to_end_2proc``: two ingest processes in one consumer group (``--group``), each landing the partitions
  the group gives it. Timed from the moment every member holds its share of the partitions (half each; no member
  lands before) to the last chunk landed: joining a group takes ~20 s on the embedded broker (a fixed cost, not
  throughput), and so does the rebalance when the first process to finish leaves. Until 2026-12-04 the clock
  started at a member's first assignment, which could be all four partitions when the other member's join came
  late: such a run measured one process;
* ``end_to_end_1core``: ``end_to_end`` pinned to one CPU (the broker is not), so that ``end_to_end_2proc_vs_1core``
  says how landing scales per core. ``end_to_end_2proc_vs_1proc`` cannot exceed ``end_to_end_2proc_ceiling``,
  the CPUs there are over the cores one process already keeps busy: one process is three threads (fetch,
  decode, land), and on a 2-core machine it leaves a second process little to add.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from catalog import get_contract
from infra.broker import EmbeddedBroker, free_port
from infra.errors import BadRequest
from infra.settings import Settings
from ingest.produce import send
from ingest.simulate import simulate

DATASET = "traffic_flow"
FETCH = {"max_partition_fetch_bytes": 8 * 1024 * 1024, "fetch_max_bytes": 64 * 1024 * 1024}

# Each child ends by printing what _child reads: seconds and CPU seconds of its measured part, and its peak RSS
_REPORT = """
print(time.perf_counter() - start, [l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0],
      time.process_time() - cpu)
"""

_RAW = (
    """
import sys, time
from kafka import KafkaConsumer, TopicPartition
bootstrap, topic, total = sys.argv[1], sys.argv[2], int(sys.argv[3])
c = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, **{fetch})
tps = [TopicPartition(topic, p) for p in sorted(c.partitions_for_topic(topic))]
c.assign(tps); c.seek_to_beginning()
start = time.perf_counter(); cpu = time.process_time(); n = 0
while n < total:
    for records in c.poll(timeout_ms=1000, max_records=100000).values():
        n += len(records)
"""
    + _REPORT
)

_NAIVE = (
    """
import json, sys, time, pandas as pd
from kafka import KafkaConsumer, TopicPartition
bootstrap, topic, total, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
c = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, **{fetch})
tps = [TopicPartition(topic, p) for p in sorted(c.partitions_for_topic(topic))]
c.assign(tps); c.seek_to_beginning()
start = time.perf_counter(); cpu = time.process_time(); n = 0; rows = []; files = 0
while n < total:
    for records in c.poll(timeout_ms=1000, max_records=100000).values():
        for r in records:
            n += 1
            try:
                rows.append(json.loads(r.value))
            except ValueError:
                pass
            if len(rows) == 10000:
                pd.DataFrame(rows).astype(str).to_parquet(f"{{out}}/{{files}}.parquet"); files += 1; rows = []
if rows:
    pd.DataFrame(rows).astype(str).to_parquet(f"{{out}}/{{files}}.parquet")
"""
    + _REPORT
)

_CITYHUB = (
    """
import sys, time
from infra.settings import get_settings
from ingest.runner import ingest_loop
start = time.perf_counter(); cpu = time.process_time()
ingest_loop(get_settings(), [sys.argv[1]])
"""
    + _REPORT
)

_GROUP_MEMBER = """
import os, sys, time
import ingest.runner as runner
import ingest.stream as stream
from infra.settings import get_settings
join, land = runner._join, stream.land_streaming
marks = {"assigned": None, "last": None, "cpu_assigned": 0.0, "cpu_last": 0.0}
share = int(sys.argv[2])  # partitions each member gets once every member has joined
barrier, members = sys.argv[3], int(sys.argv[4])  # where each member says it holds its share, and how many
def timed_join(*args):
    member = join(*args)
    # The first join can complete before the other member's arrives (it then gets every partition, and the
    # other none until a rebalance), and a member that held its share could land it all and leave before the
    # other had seen the rebalance: no member starts before every member holds its share, and the run is timed
    # from then. Polling meanwhile keeps the member in the group.
    deadline = time.time() + 120
    while time.time() < deadline:
        if len(member.consumer.assignment()) == share:
            open(os.path.join(barrier, str(os.getpid())), "w").close()
            if len(os.listdir(barrier)) == members:
                break
        member.wait_for_assignment(timeout_s=60)
        member.consumer.poll(timeout_ms=20)
    marks["assigned"], marks["cpu_assigned"] = time.time(), time.process_time()
    return member
def timed_land(*args, **kwargs):
    result = land(*args, **kwargs)
    if result.clean_rows or result.quarantined_rows:
        marks["last"], marks["cpu_last"] = time.time(), time.process_time()
    return result
runner._join, runner.land_streaming = timed_join, timed_land
runner.ingest_loop(get_settings(), [sys.argv[1]], group=True)
rss = [l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0]
print(marks["assigned"], marks["last"] or marks["assigned"], rss, max(0.0, marks["cpu_last"] - marks["cpu_assigned"]))
"""

_RDKAFKA = (
    """
import json, sys, time, pandas as pd
from confluent_kafka import Consumer, TopicPartition
bootstrap, topic, total, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
c = Consumer({{"bootstrap.servers": bootstrap, "group.id": "bench-rd", "enable.auto.commit": False,
               "fetch.max.bytes": {fetch_max_bytes}, "max.partition.fetch.bytes": {max_partition_fetch_bytes}}})
meta = c.list_topics(topic, timeout=10)
c.assign([TopicPartition(topic, p, 0) for p in sorted(meta.topics[topic].partitions)])
start = time.perf_counter(); cpu = time.process_time(); n = 0; rows = []; files = 0
while n < total:
    for m in c.consume(num_messages=10000, timeout=1.0):
        if m.error():
            continue
        n += 1
        try:
            rows.append(json.loads(m.value()))
        except ValueError:
            pass
        if len(rows) == 10000:
            pd.DataFrame(rows).astype(str).to_parquet(f"{{out}}/{{files}}.parquet"); files += 1; rows = []
if rows:
    pd.DataFrame(rows).astype(str).to_parquet(f"{{out}}/{{files}}.parquet")
"""
    + _REPORT
)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _child(
    argv: list[str], broker_pid: int, env: dict | None = None, cpus: set[int] | None = None
) -> tuple[float, float, float]:
    """Run one measured subprocess (on the CPUs ``cpus`` only, if given); it prints its own seconds, peak RSS
    (KiB) and CPU seconds: return (seconds, MB, cores busy — the child's CPU and the broker's over the seconds
    measured).

    The peak is the child's VmHWM: ru_maxrss would carry the parent's high-water mark across fork and exec."""
    broker_cpu = _cpu_seconds(broker_pid)
    pin = (lambda: os.sched_setaffinity(0, cpus)) if cpus else None
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=3600, preexec_fn=pin)
    if proc.returncode != 0:
        raise RuntimeError(f"bench child failed: {proc.stderr[-2000:]}")
    seconds, rss_kb, cpu = proc.stdout.strip().splitlines()[-1].split()
    # the broker's CPU over the whole child (start-up included, when it is idle): a slight overestimate
    cores = (float(cpu) + _cpu_seconds(broker_pid) - broker_cpu) / float(seconds)
    return float(seconds), int(rss_kb) / 1024, cores


def _group_run(env: dict, broker_pid: int, partitions: int, members: int = 2) -> tuple[float, float, float]:
    """Start ``members`` ingest processes in one consumer group; (seconds from every member holding its share of
    the ``partitions`` to the last chunk landed, largest peak RSS in MB, cores busy over those seconds)."""
    barrier = tempfile.mkdtemp(dir=env["CITYHUB_HOME"])
    broker_cpu = _cpu_seconds(broker_pid)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _GROUP_MEMBER, DATASET, str(partitions // members), barrier, str(members)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(members)
    ]
    marks = []
    for proc in procs:
        out, err = proc.communicate(timeout=3600)
        if proc.returncode != 0:
            raise RuntimeError(f"bench child failed: {err.decode()[-2000:]}")
        assigned, last, rss_kb, cpu = out.decode().strip().splitlines()[-1].split()
        marks.append((float(assigned), float(last), int(rss_kb) / 1024, float(cpu)))
    seconds = max(m[1] for m in marks) - min(m[0] for m in marks)
    # the broker's CPU over the whole run, joining included (it is idle then): a slight overestimate
    cores = (sum(m[3] for m in marks) + _cpu_seconds(broker_pid) - broker_cpu) / seconds
    return seconds, max(m[2] for m in marks), cores


def _landing_env(home: str, broker_port: int) -> dict:
    """The environment of a landing run: a lake and a consumer group of its own, so that it lands everything."""
    run_home = tempfile.mkdtemp(dir=home)
    return {
        **os.environ,
        "CITYHUB_HOME": run_home,
        "CITYHUB_BROKER_PORT": str(broker_port),
        "CITYHUB_CONSUMER_GROUP": f"bench-{run_home[-8:]}",
    }


def bench_ingest(records: int, repeat: int = 3) -> dict:
    contract = get_contract(DATASET)
    fetch = repr(FETCH)
    with tempfile.TemporaryDirectory() as home, EmbeddedBroker(free_port()) as broker:
        # four partitions, so that two group members get an even share
        settings = Settings(home=Path(home), broker_port=broker.port, topic_partitions=4)
        topic = settings.topic_for(DATASET)
        send(settings, contract, simulate(contract, records, seed=1, bad_ratio=0.01)[0])
        py, pid = sys.executable, broker.process.pid
        results: dict[str, list[tuple[float, float, float]]] = {}
        for _ in range(repeat):
            out = tempfile.mkdtemp(dir=home)
            results.setdefault("raw_fetch", []).append(
                _child([py, "-c", _RAW.format(fetch=fetch), broker.bootstrap, topic, str(records)], pid)
            )
            results.setdefault("naive", []).append(
                _child([py, "-c", _NAIVE.format(fetch=fetch), broker.bootstrap, topic, str(records), out], pid)
            )
            results.setdefault("librdkafka_naive", []).append(
                _child([py, "-c", _RDKAFKA.format(**FETCH), broker.bootstrap, topic, str(records), out], pid)
            )
            cityhub = [py, "-c", _CITYHUB, DATASET]
            results.setdefault("end_to_end", []).append(_child(cityhub, pid, _landing_env(home, broker.port)))
            one_core = {min(os.sched_getaffinity(0))}
            results.setdefault("end_to_end_1core", []).append(
                _child(cityhub, pid, _landing_env(home, broker.port), cpus=one_core)
            )
            group_env = _landing_env(home, broker.port)
            results.setdefault("end_to_end_2proc", []).append(_group_run(group_env, pid, settings.topic_partitions))
    best = {name: min(runs) for name, runs in results.items()}
    cpus = len(os.sched_getaffinity(0))  # the CPUs this process may use (a container's share, not the host's)
    rps = {f"{name}_rps": round(records / seconds) for name, (seconds, _, _) in best.items()}
    return {
        "suite": "ingest",
        "dataset": DATASET,
        "records": records,
        "best_of": repeat,
        **rps,
        "end_to_end_vs_raw_fetch": round(rps["end_to_end_rps"] / rps["raw_fetch_rps"], 3),
        "end_to_end_2proc_vs_1proc": round(rps["end_to_end_2proc_rps"] / rps["end_to_end_rps"], 3),
        # Two processes can at most use every core: over one process that keeps ``cores_busy`` of them busy they
        # gain at most cpu_count / cores_busy (on 2 cores, one process busy on 1.6 leaves room for 1.25 x)
        "end_to_end_2proc_ceiling": round(cpus / best["end_to_end"][2], 3) if best["end_to_end"][2] else None,
        # how two processes on two cores compare with one process given one core: scaling per core
        "end_to_end_2proc_vs_1core": round(rps["end_to_end_2proc_rps"] / rps["end_to_end_1core_rps"], 3),
        "librdkafka_naive_vs_raw_fetch": round(rps["librdkafka_naive_rps"] / rps["raw_fetch_rps"], 3),
        "peak_rss_mb": {name: round(max(rss for _, rss, _ in runs)) for name, runs in results.items()},
        # CPU of the path's processes and the broker over the best run's seconds, in cores (of cpu_count): how
        # much of the machine one path already uses, so how much a second process can add
        "cores_busy": {name: round(cores, 2) for name, (_, _, cores) in best.items()},
        "cpu_count": cpus,
    }


def run_bench(settings: Settings, suite: str, rows: int | None) -> dict:
    if suite == "transforms":
        from bench.transforms import bench_transforms

        return bench_transforms(rows or 200_000)
    if suite == "serve":
        from bench.serve import bench_serve

        return bench_serve(rows or 10_000_000)
    if suite != "ingest":
        raise BadRequest(f"unknown benchmark suite {suite!r}", hint="available: ingest, transforms, serve")
    return bench_ingest(rows or 200_000)
