"""``portfolio-tx demo`` (what ``make run`` runs): the whole pipeline on a simulated stream.

1. creates a fresh topic set ``demo-<timestamp>.portfolio.*`` (and a Redis namespace, group
   and transactional id of that name): a rerun never meets an earlier run's marks (the marks
   topic is compacted, never emptied), decided cycles or outcomes, and a worker running on
   the default topics is left alone;
2. starts ``portfolio-tx worker`` as a subprocess with a short cycle timeout (3 s), so the
   cycles that never complete are discarded quickly;
3. publishes a simulated upstream with faults (``portfolio_tx.sim.upstream``), paced so a person
   can follow it, and prints every outcome as the worker publishes it;
4. compares what happened with what the simulator expected: outcomes per reason, one
   outcome per cycle, dead letters, every session's Redis state against the model;
5. stops the worker with SIGTERM and checks that it exits 0.

Returns 0 only if everything matched.

main.py       the flags and the run: topics, worker, stream, checks, clean-up
processes.py  the worker and dashboard subprocesses: start, wait, stop
readers.py    the live outcome tail and the dead-letter count
report.py     the summary table and the verdict

May import anything below ``commands``; only the command line imports it.
"""

__all__: list[str] = []
