"""Offline tools over the topics: recompute every decision, verify, replay."""
