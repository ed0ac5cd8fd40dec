"""``python -m clsbench.clip_baselines``: the ``clsbench clip`` command, the entry point for
``accelerate launch -m clsbench.clip_baselines`` and ``torchrun -m clsbench.clip_baselines``."""

import sys

from clsbench.clip_baselines.cli import main

sys.exit(main())
