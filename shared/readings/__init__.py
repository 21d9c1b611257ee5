"""Readings: the one shape every source is turned into, its rules, the sliding window, the summariser, dead letters."""
