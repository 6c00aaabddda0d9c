"""The ``pyparrot`` command line: start, stop and inspect a PyParrot stack."""
