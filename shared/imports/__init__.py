"""Bulk import: files of readings dropped into the `imports` container, ingested once by a Durable orchestration."""
