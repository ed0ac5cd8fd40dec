"""The ``clsbench`` command: the one layer that joins tasks, models and the CLIP baselines."""

from clsbench.tasks.cli.main import main

__all__ = ["main"]
