"""The synthetic upstream: trading sessions publishing cycles, with faults on purpose.

upstream.py  the generator: ``SimConfig``, ``generate``/``Upstream``, the planned records,
             the interleaving of sessions, timestamps and marks
content.py   a cycle's content: the market's symbols and prices, the fills, cash events and
             REALIZED reports, and each fault built into what is sent
oracle.py    what the stream must produce: the ``Fault`` kinds and their outcomes, each
             cycle's expected decision on the model, ``bounds`` and ``check``
publish.py   ``portfolio-tx simulate``: publishes the model's stream to the input topics

May import: ``wire``, ``ledger``, ``kafka``, ``config``, ``errors``. Not the worker.
"""
