"""Storage ports and their adapters (embedded SQLite; Azure services)."""
