"""``portfolio-tx dashboard``: a live page of the commit topic for desk users.

board.py    the per-session view built from outcomes (pure)
live.py     the commit-topic reader thread and the fan-out to browsers
server.py   the Starlette app (page, server-sent events, JSON) and uvicorn
static/     the page, its script and styles, and the vendored uPlot chart library
"""
