"""Durable Functions on devhost: store, history, replay, episodes, timers, the extension's HTTP API."""
