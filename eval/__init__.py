"""Pose metrics (pure numpy) and their reports."""
