"""The ``portfolio-tx`` command line: argument parsing, one module per command of its own.

cli.py     the parser, the settings from flags and environment, the dispatch, one-line errors
flags.py   the operational flags shared by commands (log level and format, metrics port)
check.py   ``check``: the worker's heartbeat, exit 0 when alive and ready
tail.py    ``tail``: one line per outcome on the commit topic
views.py   read-side renderings of a session's state and of outcomes (``state``, ``tail``)
demo/      ``demo`` (what ``make run`` runs): its run, subprocesses, readers, report

The commands whose logic lives in a package of its own are dispatched there:
``simulate`` (``sim.publish``), ``verify`` and ``replay`` (``audit``), ``dashboard``.

May import anything below it; nothing imports it.
"""
