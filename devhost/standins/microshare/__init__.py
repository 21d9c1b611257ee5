"""The Microshare stand-in: its data, its server and the `make run MICROSHARE=demo` wiring."""
