"""The ``tbotan`` command (``main``) and ``tbotan run`` (``run``), the only modules that use every stack.

Each subcommand imports its stack when it runs, so ``tbotan energy`` never loads torch or dask.
"""

from .main import main

__all__ = ["main"]
