"""devhost: runs function_app.py on this machine the way the Functions host does, on embedded storage."""
