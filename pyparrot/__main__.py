"""``python -m pyparrot``: the same as the ``pyparrot`` command."""

from pyparrot.cli import app

app()
