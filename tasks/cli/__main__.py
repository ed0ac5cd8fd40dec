"""``python -m clsbench.tasks.cli``: the clsbench command."""

from clsbench.tasks.cli.main import main

raise SystemExit(main())
