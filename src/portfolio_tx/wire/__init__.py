"""The wire: what travels on the topics (CONTRACT §3–§4) and how it is encoded.

events.py    the input records (fills, P&L, markers, marks) as frozen values, their checks
outcomes.py  the cycle outcome, from a ledger Decision and back to a committed state
records.py   each schema in ``schemas/*.avsc`` bound to its record class
codec.py     Avro values on the wire (single-object encoding or Schema Registry framing)
encoder.py   the compiled-once Avro binary encoder of the outcome record (pure Python)
native.py    the plans for the compiled core (``native/``, Rust): encode and decode in it
topics.py    the six topic names
schemas/     a link to the repository's top-level ``schemas/`` (the one source)

May import: ``ledger``, ``errors``, and the ``portfolio_tx_native`` extension. Nothing here
does I/O.
"""
