"""Summarise a py-spy ``--format raw`` profile (collapsed stacks): where the worker's time goes.

    python bench/flame.py profile.txt [--focus FUNC] [--top 30]

Prints, per function, the share of samples in which it is on the stack (inclusive) and on
top (self). Samples were taken with ``--idle``, so time spent waiting (in consume, in a
transaction commit, in a Redis round trip) counts: the shares are shares of wall time of the
sampled threads. Only the main thread is counted (librdkafka's threads are native).
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.+?) \((?P<file>[^:()]+)(?::\d+)?\)$")


def frames(stack: str) -> list[str]:
    out = []
    for raw in stack.split(";"):
        found = _FRAME.match(raw.strip())
        if found:
            path = found.group("file")
            short = path.split("site-packages/")[-1].split("src/")[-1]
            out.append(f"{found.group('func')} ({short})")
        else:
            out.append(raw.strip())
    return out


def summarise(path: Path, focus: str | None = None) -> tuple[int, Counter[str], Counter[str]]:
    inclusive: Counter[str] = Counter()
    self_time: Counter[str] = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        if "process " in stack.split(";")[0] or "thread " in stack.split(";")[0]:
            stack = ";".join(stack.split(";")[1:])
        names = frames(stack)
        if not names or "Worker.run" not in " ".join(names) and "run (" not in " ".join(names):
            continue
        if focus and not any(focus in n for n in names):
            continue
        count = int(count_text)
        total += count
        for name in set(names):
            inclusive[name] += count
        self_time[names[-1]] += count
    return total, inclusive, self_time


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("profile", type=Path)
    parser.add_argument("--focus")
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args()
    total, inclusive, self_time = summarise(args.profile, args.focus)
    print(f"{total} samples")
    print(f"{'incl%':>6} {'self%':>6}  function")
    for name, count in inclusive.most_common(args.top):
        print(f"{100 * count / total:6.1f} {100 * self_time[name] / total:6.1f}  {name}")
    print("\nby self time")
    for name, count in self_time.most_common(args.top // 2):
        print(f"{100 * inclusive[name] / total:6.1f} {100 * count / total:6.1f}  {name}")


if __name__ == "__main__":
    main()
