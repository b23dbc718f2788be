"""Maintenance scripts (python -m tools.NAME): refitting the shipped calibration, splitting data."""
