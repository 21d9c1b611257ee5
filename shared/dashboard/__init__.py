"""The dashboard: its read side, range history, PNG charts and the page."""
