"""The ``render`` command line (see ``renderer.cli.main``)."""

from renderer.cli.main import main, run

__all__ = ["main", "run"]
