"""Container and table names: fixed by the design, shared by the app, devhost and infra."""

READINGS = "readings"
SUMMARIES = "summaries"
LEASES = "leases"

WINDOWS_TABLE = "windows"
DEAD_LETTERS_TABLE = "deadletters"
SIMULATOR_TABLE = "simulator"

PARTITION_KEY_PATHS = {READINGS: "/sensor_id", SUMMARIES: "/sensor_id", LEASES: "/id"}
