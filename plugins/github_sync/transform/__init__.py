"""Pure functions from GitHub JSON to rows: normalizer, label rules, scoring, metrics, timestamps.

No I/O, no clock: the run's time is passed in.
"""
