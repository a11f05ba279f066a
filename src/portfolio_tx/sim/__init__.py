"""The synthetic upstream: trading sessions publishing cycles, with faults on purpose.

upstream.py  the session model: fills, reports, markers, marks, and the injected faults
publish.py   ``portfolio-tx simulate``: publishes the model's stream to the input topics

May import: ``wire``, ``ledger``, ``kafka``, ``config``, ``errors``. Not the worker.
"""
