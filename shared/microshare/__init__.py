"""Microshare to Event Hubs: the API's names, its client, record-to-event mapping, forwarding, hub fan-out, backfill."""
