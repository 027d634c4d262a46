"""Command-line tools for cassette files: ``ls``, ``show``, ``lint`` and ``new``.

Each module holds one command's work as plain functions returning an exit status;
:mod:`tapedeck.cli` wires them into ``argparse``.
"""
