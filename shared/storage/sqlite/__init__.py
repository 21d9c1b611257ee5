"""Embedded storage adapters on one SQLite file."""
