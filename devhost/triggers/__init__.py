"""Trigger drivers: timers, the Cosmos DB change feed, Event Hubs, warmup."""
