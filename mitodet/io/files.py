"""Reading small text inputs (JSON, CSV) with one-line errors naming the file."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import os
import tempfile
from pathlib import Path

from mitodet.errors import MitodetError

MAX_INT_DIGITS = 30  # longer integers are read as floats (inf past 1e308): no OverflowError later


def parse_json(text: str):
    """``json.loads`` that reads an absurdly long integer as a float (finite checks catch it)."""
    return json.loads(text, parse_int=lambda s: int(s) if len(s) <= MAX_INT_DIGITS else float(s))


def read_json(path: str | os.PathLike):
    """Parse a JSON file; a missing, folder, non-text, invalid or absurdly nested file is a MitodetError."""
    path = Path(path)
    try:
        return parse_json(path.read_text(encoding="utf-8"))
    except RecursionError:
        raise MitodetError(path, "not usable JSON: nested too deeply") from None
    except FileNotFoundError:
        raise MitodetError(path, "file not found") from None
    except IsADirectoryError:
        raise MitodetError(path, "is a folder, not a JSON file") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise MitodetError(path, f"not valid JSON: {err}") from None


@contextlib.contextmanager
def csv_errors(path: str | os.PathLike):
    """Turn the errors of reading a CSV file into one-line MitodetErrors naming it."""
    try:
        yield
    except FileNotFoundError:
        raise MitodetError(path, "file not found") from None
    except IsADirectoryError:
        raise MitodetError(path, "is a folder, not a CSV file") from None
    except UnicodeDecodeError:
        raise MitodetError(path, "not a text CSV file") from None
    except csv.Error as err:
        raise MitodetError(path, f"malformed CSV: {err}") from None


def check_output_dir(path: str | os.PathLike, source: str | None = None, create: bool = False) -> Path:
    """An output folder that exists or can be created, and that this process may write into.

    A file in its place (or in place of a parent), a parent that is not writable, or a folder
    that is not writable is a one-line MitodetError naming the folder (and ``source``, e.g.
    ``--out``), raised before any work is done. ``create`` makes the folder (with parents)."""
    path = Path(path)
    where = f"{source} {path}" if source else path
    if path.exists() and not path.is_dir():
        raise MitodetError(where, "exists and is not a folder")
    if create:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise MitodetError(where, "a file is in the way of this folder (or of one of its parents)") from None
        except OSError as err:
            raise MitodetError(where, f"cannot create the folder ({err.strerror or err})") from None
    existing = path.absolute()
    while not existing.exists():  # the nearest existing ancestor must be a writable folder
        existing = existing.parent
    if not existing.is_dir():
        raise MitodetError(where, f"{existing} is a file, not a folder")
    try:  # a real probe: os.access says yes to root on read-only places such as /sys
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as err:
        what = "the folder" if existing == path.absolute() else str(existing)
        raise MitodetError(where, f"cannot write into {what} ({err.strerror or err})") from None
    return path


def check_output_file(path: str | os.PathLike, source: str | None = None) -> Path:
    """An output file that can be written: not a folder, and its folder existing or creatable and
    writable (it is replaced atomically, which needs the folder only)."""
    path = Path(path)
    where = f"{source} {path}" if source else path
    if path.is_dir():
        raise MitodetError(where, "is a folder; give a file name")
    if path.name in ("", ".", ".."):
        raise MitodetError(where, "is not a file name")
    try:
        check_output_dir(path.parent)
    except MitodetError as err:  # name the file the user gave, not only its folder
        raise MitodetError(where, err.problem) from None
    return path


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes (a checkpoint's identity)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
