"""Reading small text inputs (JSON, CSV) with one-line errors naming the file."""

from __future__ import annotations

import contextlib
import csv
import json
import os
from pathlib import Path

from mitodet.errors import MitodetError


def read_json(path: str | os.PathLike):
    """Parse a JSON file; a missing, folder, non-text or invalid file is a MitodetError."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
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
