"""Container and table names: fixed by the design, shared by the app, devhost and infra."""

READINGS = "readings"
SUMMARIES = "summaries"
LEASES = "leases"

WINDOWS_TABLE = "windows"
DEAD_LETTERS_TABLE = "deadletters"
SIMULATOR_TABLE = "simulator"
DEVICES_TABLE = "devices"  # first and last seen, and deliveries, per device
MICROSHARE_TABLE = "microshare"  # the shared access token
FORWARDER_TABLE = "forwarder"  # watermark and totals per recType
DELIVERIES_TABLE = "deliveries"  # dedup keys per hub and recType
ALERT_RULES_TABLE = "alertrules"  # alert rules by name
ALERTS_TABLE = "alerts"  # alert states, the notification outbox, alert history, received alerts

PARTITION_KEY_PATHS = {READINGS: "/sensor_id", SUMMARIES: "/sensor_id", LEASES: "/id"}
