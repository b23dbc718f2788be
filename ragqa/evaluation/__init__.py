"""Measuring on labelled questions: `ragqa eval` (run.py), `ragqa calibrate` (calibrate.py:
the calibrator and the Learn-then-Test threshold) and the metrics."""
