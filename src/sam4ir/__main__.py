"""``python -m sam4ir``: the ``sam4ir`` command (see :mod:`sam4ir.cli`)."""

from sam4ir.cli import main

main()
