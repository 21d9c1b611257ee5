"""The function app as devhost sees it: its settings, binding metadata, host.json, and how its functions are called."""
