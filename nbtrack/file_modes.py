"""The permissions of the files and folders nbtrack writes: those a plain ``open()`` or
``mkdir()`` would give under the process's umask (0644 and 0755 under the usual umask 022, as
MLflow's artifacts have).

nbtrack writes a file under a temporary name and renames it into place, so that nobody sees it
half-written; but ``tempfile.mkstemp`` makes its file 0600 and ``mkdtemp`` its folder 0700,
whatever the umask. The writers give the temporary file ``file_mode()`` (a folder
``dir_mode()``) before the rename.
"""

from __future__ import annotations

import os

__all__ = ["dir_mode", "file_mode", "umask"]

_STATUS = "/proc/self/status"


def umask() -> int:
    """The process's umask, read without changing it where the system shows it (Linux's
    ``/proc/self/status``, since 4.7). Elsewhere it is set and set back, the only portable way
    to read it; a file another thread creates in between gets the strict 077 meanwhile."""
    try:
        with open(_STATUS, encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """The mode of a new file: 0666 less the umask."""
    return 0o666 & ~umask()


def dir_mode() -> int:
    """The mode of a new folder: 0777 less the umask."""
    return 0o777 & ~umask()
