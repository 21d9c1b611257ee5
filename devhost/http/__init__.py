"""devhost's HTTP front: route templates, the web server, host keys."""
