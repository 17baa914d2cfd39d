"""``python -m gridcore.cli``: the ``gridcore`` command."""

from gridcore.cli import main

main()
