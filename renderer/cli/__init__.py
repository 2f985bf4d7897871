"""The ``render`` command line (see ``renderer.cli.main``)."""

from renderer.cli.main import main

__all__ = ["main"]
