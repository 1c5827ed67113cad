"""One error type for bad input: the CLI prints it as one line and exits 2."""

from __future__ import annotations

import os
import re

# C0 and C1 control characters (and DEL): a name holding them could move the cursor, recolour
# the terminal or, with a newline, forge a line of its own
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """``text`` safe to print on one line: control characters as visible escapes (``\\n``,
    ``\\x1b``), and bytes that were not UTF-8 (surrogate escapes) as ``\\xNN``."""
    text = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")

    def esc(m: re.Match) -> str:
        c = m.group()
        return {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(c, f"\\x{ord(c):02x}")

    return _CONTROL.sub(esc, text)


class MitodetError(Exception):
    """Bad input: names the file (or setting) and the problem.

    ``str(err)`` is the one line the CLI prints, e.g.
    ``slide.svs: no pixel spacing stored; pass --mpp``.
    """

    def __init__(self, source: str | os.PathLike | None, problem: str):
        self.source = None if source is None else str(source)
        self.problem = problem
        super().__init__(printable(f"{self.source}: {problem}" if self.source else problem))
