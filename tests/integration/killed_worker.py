"""A worker that kills itself with SIGKILL once N cycles are decided, right after a batch's
Redis write and before its Kafka commit: the fault of test_worker_recovery, injected through
``build_worker(before_kafka_commit=...)``. Settings come from the environment, as for
``portfolio-tx worker``.

    python tests/integration/killed_worker.py N
"""

from __future__ import annotations

import os
import signal
import sys

from portfolio_tx.config import load_settings
from portfolio_tx.logs import configure
from portfolio_tx.worker.build import build_worker
from portfolio_tx.worker.stats import WorkerStats


def main() -> None:
    after = int(sys.argv[1])

    def kill_once_decided(stats: WorkerStats) -> None:
        if stats.decided >= after:
            os.kill(os.getpid(), signal.SIGKILL)

    configure()
    worker = build_worker(load_settings(), before_kafka_commit=kill_once_decided)
    worker.install_signal_handlers()
    worker.run()


if __name__ == "__main__":
    main()
