"""``make bench``: load one workload, run every scenario on the same broker, print one table.

    python bench/run.py                    # full scale: 1,001,000 input events (~20 min)
    python bench/run.py --scale 0.05       # quick: ~52,000 input events (~3 min)
    python bench/run.py --only ours,peer   # a subset (ceilings always run)

Scenarios (bench/README in RESULTS.md says what each measures and how):
ceiling A/B, ours (the worker as it is), ours+ (the worker with the optimisations proposed in
RESULTS.md, applied as patches from bench/patches.py), peer (Quix Streams), kstreams (Kafka
Streams, bench/kstreams), scale-out (two workers in one group), latency at half of the
measured maximum, memory with 10,000 open sessions, library batch (1,000 transactions as one
portfolio_batch vs one by one), cluster (one and three workers on ``scripts/stack up
--cluster``: three brokers with RF 3 and a Redis Cluster; bench/cluster.py). Every worker
and peer run is checked for correctness (bench/check.py); a row with a problem says so. The
results are also written to bench/results/<date>.json and .md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import ROOT, Stack, create, delete_prefix, produce_all, stack_pids  # noqa: E402
from report import machine, render  # noqa: E402
from scenarios import Result, ceiling, worker_run  # noqa: E402
from workload import Shape, build  # noqa: E402

from portfolio_tx.wire.topics import TopicNames  # noqa: E402

T = TypeVar("T")
PROPOSED = "marks3"  # redis1 is in the product since worker/checkpoint.py
PROPOSED_ENV = {"PTX_BATCH_SIZE": "2000"}
# proposed changes to code the peer shares (codec, ledger) or to the process (GC): the peer
# gets them too when it is compared with ours+
SHARED = ("wirebytes", "fastwire", "gc")
# Every run uses the product's defaults; the proposed rows add PROPOSED_ENV.
BASE_ENV: dict[str, str] = {}
ALL = ("ours", "ours+", "peer", "kstreams", "scale", "latency", "memory", "library", "cluster")


def _settled_broker() -> int | None:
    """The broker's pid once the stack has been up for a while (someone else's tests may
    be restarting it)."""
    for _ in range(60):
        pids = stack_pids()
        if "broker" in pids and "redis" in pids:
            time.sleep(5)
            if stack_pids() == pids:
                return pids["broker"]
        time.sleep(5)
    return stack_pids().get("broker")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of 77 cycles/session")
    parser.add_argument("--partitions", type=int, default=8)
    parser.add_argument("--only", default=",".join(ALL), help=f"subset of {','.join(ALL)}")
    parser.add_argument("--proposed", default=PROPOSED, help="patches for the ours+ rows")
    parser.add_argument("--latency-seconds", type=float, default=30.0)
    parser.add_argument("--latency-rate", type=float, default=None,
                        help="events/s for the latency rows (default: half the row's maximum)")
    parser.add_argument("--keep", action="store_true", help="keep the bench topics")
    args = parser.parse_args()
    only = set(args.only.split(","))
    stack = Stack.from_env()
    shape = Shape(cycles=max(1, round(77 * args.scale)))
    started = time.time()
    print(f"bench: generating {shape.input_events:,} input events ...", flush=True)
    workload = build(shape)
    prefix = f"bench-{time.strftime('%m%d%H%M%S')}-{os.getpid()}."
    logs = ROOT / "bench" / "results" / "logs" / prefix.rstrip(".")  # one folder per run
    inputs = TopicNames.with_prefix(prefix)
    create(stack, inputs, args.partitions)
    load_s = produce_all(stack, inputs, workload.records)
    print(f"bench: loaded {len(workload.records):,} records into {prefix}* in {load_s:.1f}s",
          flush=True)
    broker_pid = stack_pids().get("broker")
    results: dict[str, object] = {"machine": machine(), "scale": args.scale,
                                  "partitions": args.partitions, "events": shape.input_events,
                                  "cycles": workload.cycles, "marks": workload.count("marks"),
                                  "outcomes": dict(workload.outcomes), "proposed": args.proposed,
                                  "proposed_env": PROPOSED_ENV, "base_env": BASE_ENV}
    rows: dict[str, Result] = {}
    attempts = 1

    def undisturbed(run: Callable[[], T]) -> T:
        """Run a scenario again (up to 3 times) when the broker was restarted meanwhile:
        other people's fault tests share this broker."""
        nonlocal attempts
        for attempt in range(1, 4):
            attempts = attempt
            before = _settled_broker()
            result = run()
            if stack_pids().get("broker") == before:
                return result
            print("bench: the broker was restarted during the scenario; running it again",
                  flush=True)
            time.sleep(15)
        results["disturbed"] = "the broker was restarted during every attempt of a scenario"
        return result

    def record(key: str, result: Result) -> None:
        rows[key] = result
        result.extra["attempts"] = attempts
        print(f"bench: {result.name}: {result.events_per_s:,.0f} events/s in "
              f"{result.seconds:.1f}s cpu={ {k: round(v, 2) for k, v in result.cpu.items()} }"
              f"{' PROBLEMS: ' + '; '.join(result.problems) if result.problems else ''}",
              flush=True)

    record("A", undisturbed(lambda: ceiling(stack, inputs, shape.input_events,
                                            decode_values=False)))
    record("B", undisturbed(lambda: ceiling(stack, inputs, shape.input_events,
                                            decode_values=True)))
    plus_env = {**BASE_ENV, **PROPOSED_ENV}
    if "ours" in only:
        result = undisturbed(lambda: worker_run(
            stack, inputs, args.partitions, workload, f"ours{attempts}", logs, env=BASE_ENV))
        result.name = "ours (the worker as it is)"
        record("ours", result)
    if "ours+" in only:
        result = undisturbed(lambda: worker_run(
            stack, inputs, args.partitions, workload, f"oursplus{attempts}", logs,
            patches=args.proposed, env=plus_env))
        result.name = "ours+ (proposed changes)"
        record("ours+", result)
    if "peer" in only:
        from peer import peer_run

        record("peer", undisturbed(lambda: peer_run(
            stack, inputs, args.partitions, workload, f"peer{attempts}", logs)))
        shared = ",".join(p for p in args.proposed.split(",") if p in SHARED)
        if "ours+" in only and shared:
            result = undisturbed(lambda: peer_run(
                stack, inputs, args.partitions, workload, f"peerplus{attempts}", logs,
                patches=shared))
            result.name += f" + the shared changes ({shared})"
            record("peer+", result)
    if "kstreams" in only:
        from kstreams import kstreams_run

        record("kstreams", undisturbed(lambda: kstreams_run(
            stack, inputs, args.partitions, workload, f"kstreams{attempts}", logs)))
    if "scale" in only:
        for key, patches, env in (("two", "", BASE_ENV), ("two+", args.proposed, plus_env)):
            if key == "two+" and "ours+" not in only:
                continue
            name = key.replace("+", "p")
            result = undisturbed(lambda: worker_run(
                stack, inputs, args.partitions, workload, f"{name}{attempts}",  # noqa: B023
                logs, workers=2, patches=patches, env=env))  # noqa: B023
            result.name = "two workers" + (" (proposed)" if patches else "")
            record(key, result)
    if "latency" in only:
        from live import latency_run

        for key, patches, env in (("ours", "", BASE_ENV), ("ours+", args.proposed, plus_env)):
            if key not in rows:
                continue
            rate = args.latency_rate or rows[key].events_per_s / 2
            found = undisturbed(lambda: latency_run(
                stack, prefix, args.partitions, rate, args.latency_seconds, logs,  # noqa: B023
                patches=patches, env=env, name=f"lat{len(results)}{attempts}"))  # noqa: B023
            if args.latency_rate:
                found["at"] = "a set rate"  # not the half-load target
            results[f"latency {key}"] = found
            print(f"bench: latency {key} at {rate:,.0f} events/s: {found}", flush=True)
    if "memory" in only:
        from live import memory_run

        found = undisturbed(lambda: memory_run(stack, prefix, args.partitions, logs,
                                               env=BASE_ENV))
        results["memory"] = found
        print(f"bench: memory: {found}", flush=True)
    if "library" in only:
        from library_batch import library_batch_run

        found = undisturbed(lambda: library_batch_run(stack.redis_url))
        results["library"] = found
        print(f"bench: library: {found}", flush=True)
    if "cluster" in only:
        from cluster import cluster_rows

        for key, result in zip(("cluster1", "cluster3"),
                               cluster_rows(prefix, args.partitions, workload, logs),
                               strict=True):
            record(key, result)
    if stack_pids().get("broker") != broker_pid:
        results["broker_restarted"] = "yes (the scenarios it hit were run again)"
    results["rows"] = {k: {"name": r.name, "seconds": r.seconds, "events": r.events,
                           "cycles": r.cycles, "events_per_s": r.events_per_s,
                           "cycles_per_s": r.cycles_per_s, "cpu": r.cpu,
                           "rss_peak_mb": r.rss_peak_mb, "problems": r.problems}
                       for k, r in rows.items()}
    results["wall_s"] = time.time() - started
    if not args.keep:
        delete_prefix(stack, prefix)
    table = render(results)
    print(table)
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (out / f"{stamp}.json").write_text(json.dumps(results, indent=1, default=str))
    (out / f"{stamp}.md").write_text(table + "\n")
    failed = any(r.problems for r in rows.values())
    return 1 if failed else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
