"""Atomic output: write to a temporary file beside the target, then rename.

A crash or Ctrl-C never leaves a half-written output behind, and an existing
file is only replaced once the new one is complete. Only ``kill -9`` (or a power cut)
can leave the hidden temporary file itself behind: :func:`remove_stale_temps` clears
those of an output folder, and commands call it on the folders they write.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import os
import re
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from mitodet.errors import MitodetError

_UMASK = os.umask(0)
os.umask(_UMASK)

# Temporary names of atomic_path: the unmistakable prefix TEMP_PREFIX + target stem + "." +
# mkstemp's 8 random characters [a-z0-9_] + target suffix, e.g.
# ".~mitodet-partial~.img.mitotic-figures.k2j_x9ab.json" for img.mitotic-figures.json. Only names
# with this prefix are ever removed: a user's own dotfiles (".env.template", ".notes.12345678.txt")
# never match it.
TEMP_PREFIX = ".~mitodet-partial~."
TEMP_NAME = re.compile("^" + re.escape(TEMP_PREFIX) + r"(?P<stem>.+)\.(?P<rand>[a-z0-9_]{8})(?P<suffix>\.[^.]+)?$")
STALE_AFTER_S = 60.0  # a temp file untouched this long belongs to no running writer


def temp_target(name: str) -> str | None:
    """The output a temporary file name of :func:`atomic_path` stands for, or None for other names."""
    m = TEMP_NAME.match(name)
    return None if m is None else m["stem"] + (m["suffix"] or "")


def remove_stale_temps(folder: str | os.PathLike, min_age_s: float = STALE_AFTER_S) -> list[Path]:
    """Delete the temporary files that :func:`atomic_path` leaves when its process is killed
    (``kill -9`` between creating and renaming one), in ``folder`` only (not below it).

    Only hidden files of exactly that naming pattern (its prefix is this program's own), not
    modified for ``min_age_s`` seconds (so a concurrent writer's file in progress is left
    alone), are removed. Returns them;
    a missing folder or a file that cannot be removed is skipped silently."""
    folder = Path(folder)
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    now = time.time()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.startswith(".") or temp_target(entry.name) is None:
            continue
        try:
            if not entry.is_file(follow_symlinks=False) or now - entry.stat().st_mtime < min_age_s:
                continue
            os.unlink(entry.path)
        except OSError:
            continue
        removed.append(Path(entry.path))
    return sorted(removed)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path in the target's folder; rename it onto ``path`` on success.

    For libraries that write to a path themselves (``torch.save``, ``savefig``, PIL).
    The temporary name keeps the target's suffix so format detection still works.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{path.stem}.", suffix=path.suffix, dir=path.parent)
    except (FileExistsError, NotADirectoryError):
        raise MitodetError(path, "cannot write: a file is in the way of its folder") from None
    except OSError as err:  # read-only folder, disk full, ...: name the output, not the temporary file
        raise MitodetError(path, f"cannot write ({err.strerror or err})") from None
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; outputs get the usual permissions
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except OSError as err:  # disk full while writing, ...: name the output, keep nothing half-written
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EIO):
            raise MitodetError(path, f"cannot write ({err.strerror or err})") from None
        raise
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", **kwargs):
    """``open()`` for writing, made atomic: the file appears whole or not at all."""
    if not any(m in mode for m in "wx"):
        raise ValueError("atomic_open is for writing ('w' or 'wb')")
    if "b" not in mode:  # a file name that is not valid UTF-8 is written back as the bytes it was
        kwargs.setdefault("errors", "surrogateescape")
    with atomic_path(path) as tmp:
        with open(tmp, mode.replace("x", "w"), **kwargs) as fh:
            yield fh


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_open(path, "w", encoding="utf-8") as fh:
        fh.write(text)


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # what a spreadsheet may run as a formula (OWASP)


def safe_cell(value):
    """A CSV cell a spreadsheet shows as text: a string starting like a formula (``=``, ``+``,
    ``-``, ``@``, tab, CR) gets a leading ``'``, as OWASP's CSV-injection advice says; numbers,
    and strings that are plain numbers (``-0.5``), are left as they are."""
    if not isinstance(value, str) or not value.startswith(FORMULA_START):
        return value
    try:
        float(value)
        return value
    except ValueError:
        return "'" + value


def write_csv(path: str | os.PathLike, header: Sequence[str], rows: Iterable[Sequence | Mapping]) -> int:
    """Write a CSV table atomically: ``header`` then ``rows`` (sequences, or mappings keyed by the
    header, missing keys left empty), every cell through :func:`safe_cell`. Every CSV mitodet
    writes goes through here. Returns the number of rows written."""
    n = 0
    with atomic_open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow([safe_cell(h) for h in header])
        for row in rows:
            cells = [row.get(k, "") for k in header] if isinstance(row, Mapping) else row
            writer.writerow([safe_cell(c) for c in cells])
            n += 1
    return n
