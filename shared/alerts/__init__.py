"""Alerts: rules, evaluation, notifications, inbound platform alerts."""
