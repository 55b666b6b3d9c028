"""Typer sub-apps of the ``privlens`` command, one module per group (registered in ``cli.py``)."""
