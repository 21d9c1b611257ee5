"""Ways readings come in: the ingest API, Event Hub events, Microshare occupancy, the device registry, the simulator."""
