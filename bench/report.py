"""The machine a run was on, and the table ``run.py`` prints (Markdown, so RESULTS.md can
hold it as printed)."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from harness import ROOT


def machine() -> dict[str, str]:
    cpu, mem_kb = "unknown", 0
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
        meminfo = Path("/proc/meminfo").read_text().splitlines()
    except OSError:
        cpuinfo = meminfo = []
    for line in cpuinfo:
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    for line in meminfo:
        if line.startswith("MemTotal"):
            mem_kb = int(line.split()[1])
    git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                         text=True, check=False).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                           capture_output=True, text=True, check=False).stdout.strip()
    import confluent_kafka

    versions = {name: _version(name) for name in ("confluent-kafka", "fastavro", "redis")}
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "ram": f"{mem_kb / 1024 / 1024:.1f} GiB",
        "python": platform.python_version(),
        "librdkafka": confluent_kafka.libversion()[0],
        "commit": git + (" (+ uncommitted changes)" if dirty else ""),
        **versions,
    }


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "-"


def _cpu(cpu: dict[str, float]) -> str:
    return ", ".join(f"{name} {share:.2f}" for name, share in sorted(cpu.items()) if share >= 0.01)


def render(results: dict[str, Any]) -> str:
    m = results["machine"]
    rows = results["rows"]
    lines = [
        f"bench {m['date']} · commit {m['commit']} · {m['nproc']} cores {m['cpu']} · "
        f"{m['ram']} RAM · Python {m['python']} · librdkafka {m['librdkafka']}",
        f"workload: {results['events']:,} input events ({results['cycles']:,} cycles of 10 "
        f"fills + 2 reports + 1 marker, 1,000 sessions, 50 symbols; "
        f"{results['outcomes']}) + {results['marks']:,} marks; scale {results['scale']}; "
        f"{results['partitions']} partitions",
        "",
        "| scenario | events/s | cycles/s | seconds | CPU used (cores) | peak RSS | check |",
        "|---|---:|---:|---:|---|---:|---|",
    ]
    for row in rows.values():
        check = "ok" if not row["problems"] else "FAILED: " + "; ".join(row["problems"])[:300]
        cycles = f"{row['cycles_per_s']:,.0f}" if row["cycles"] else ""
        rss = f"{row['rss_peak_mb']:,.0f} MB" if row["rss_peak_mb"] else ""
        lines.append(f"| {row['name']} | {row['events_per_s']:,.0f} | {cycles} | "
                     f"{row['seconds']:.1f} | {_cpu(row['cpu'])} | {rss} | {check} |")
    latency_rows = [(k, results[k]) for k in ("latency ours", "latency ours+") if k in results]
    if latency_rows:
        lines += ["","| latency marker published → outcome visible (read_committed) | rate "
                  "(events/s) | p50 ms | p99 ms | p99.9 ms | max ms | cycles measured |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        for key, found in latency_rows:
            label = "ours+ (proposed)" if key.endswith("+") else "ours"
            at = found.get("at", "half its max")
            lines.append(f"| {label} at {at} | {found['rate']:,.0f} | "
                         f"{found['p50']:.0f} | {found['p99']:.0f} | {found['p999']:.0f} | "
                         f"{found['max']:.0f} | {found['outcomes']:,} of {found['cycles']:,} |")
        for key, found in latency_rows:
            shares = found.get("phase_shares")
            if shares:
                label = "ours+" if key.endswith("+") else "ours"
                split = ", ".join(f"{phase} {share:.0%}" for phase, share in shares.items())
                span = found["phase_span_s"]
                lines.append(f"\n{label}: the worker's wall time over {span:.0f} s at half "
                             f"load (ptx_iteration_seconds_total): {split}")
    library = results.get("library")
    if library:
        lines += [
            "",
            "| library: small transactions on as many sessions | one by one | one batch | ratio |",
            "|---|---:|---:|---:|",
            f"| {library['sessions']:,} (median of {library.get('rounds', 1)} rounds) | "
            f"{library['one_by_one_s'] * 1e6 / library['sessions']:.0f} µs/tx | "
            f"{library['batch_s'] * 1e6 / library['sessions']:.0f} µs/tx | "
            f"{library['ratio']:.1f}× (rounds {library.get('ratios', '-')}) |",
        ]
    targets = _targets(results)
    if targets:
        lines += ["", "| target | measured | met |", "|---|---|---|"]
        lines += [f"| {t} | {v} | {'yes' if ok else 'NO'} |" for t, v, ok in targets]
    if "disturbed" in results:
        lines += ["", f"WARNING: {results['disturbed']}"]
    return "\n".join(lines)


def _targets(results: dict[str, Any]) -> list[tuple[str, str, bool]]:
    rows = results["rows"]
    rate = {k: r["events_per_s"] for k, r in rows.items() if not r["problems"]}
    out: list[tuple[str, str, bool]] = []
    for key, label in (("ours", "ours"), ("ours+", "ours+ (proposed)")):
        if key in rate and "B" in rate:
            share = rate[key] / rate["B"]
            out.append((f"{label} ≥ 50% of ceiling B", f"{share:.1%}", share >= 0.5))
        peer = "peer+" if key == "ours+" and "peer+" in rate else "peer"
        if key in rate and peer in rate:
            ratio = rate[key] / rate[peer]
            against = " (with the shared changes)" if peer == "peer+" else ""
            out.append((f"{label} ≥ 2× the Quix peer{against}", f"{ratio:.2f}×", ratio >= 2))
        if key in rate and "kstreams" in rate:
            ratio = rate[key] / rate["kstreams"]
            out.append((f"{label} ≥ 1× the Kafka Streams peer", f"{ratio:.2f}×", ratio >= 1))
        found = results.get(f"latency {key}")
        if found and found.get("at", "half its max") == "half its max":
            out.append((f"{label}: p99 ≤ 50 ms at half load", f"{found['p99']:.0f} ms",
                        found["p99"] <= 50))
        two = "two" if key == "ours" else "two+"
        if key in rate and two in rate:
            ratio = rate[two] / rate[key]
            out.append((f"{label}: two workers ≥ 1.8× one", f"{ratio:.2f}×", ratio >= 1.8))
        if key in rate and rows[key].get("rss_peak_mb"):
            rss = rows[key]["rss_peak_mb"]
            out.append((f"{label}: RSS ≤ 400 MB while draining the backlog", f"{rss:.0f} MB",
                        rss <= 400))
    if "cluster1" in rate and "cluster3" in rate:
        ratio = rate["cluster3"] / rate["cluster1"]
        out.append(("cluster stack: three workers vs one (reported, no target)",
                    f"{ratio:.2f}×", True))
    library = results.get("library")
    if library:
        out.append(("library: one batch ≥ 5× one by one", f"{library['ratio']:.1f}×",
                    library["ratio"] >= 5))
    memory = results.get("memory")
    if memory:
        out.append((f"RSS ≤ 300 MB with {memory['sessions']:,} open sessions",
                    f"{memory['hwm_mb']:.0f} MB peak ({memory['open_cycles']:,.0f} open cycles)",
                    memory["hwm_mb"] <= 300))
    return out


if __name__ == "__main__":  # re-render a saved run: python bench/report.py results/X.json
    import json
    import sys

    print(render(json.loads(Path(sys.argv[1]).read_text())))
