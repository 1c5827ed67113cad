"""One error type for bad input: the CLI prints it as one line and exits 2."""

from __future__ import annotations

import os


class MitodetError(Exception):
    """Bad input: names the file (or setting) and the problem.

    ``str(err)`` is the one line the CLI prints, e.g.
    ``slide.svs: no pixel spacing stored; pass --mpp``.
    """

    def __init__(self, source: str | os.PathLike | None, problem: str):
        self.source = None if source is None else str(source)
        self.problem = problem
        super().__init__(f"{self.source}: {problem}" if self.source else problem)
