"""Whether the process a run belongs to is still there.

A run's row names the process that will end it by host and pid and, where the system tells it,
by when that process started (:func:`own_start`). A pid alone is not enough: pids are reused,
and a job restarted in a container is pid 1 again under the same hostname. The start tells the
process that wrote the row from one that took its pid since.

Starts are read from ``/proc`` (Linux). Where there is none (macOS, Windows), or it is not this
process's pid namespace's (``unshare --pid`` without a ``/proc`` of its own), no start is
recorded or read, and the pid alone decides, as it did before starts were recorded.
"""

from __future__ import annotations

import functools
import os

__all__ = ["own_start", "parse_stat", "pid_alive", "process_alive", "this_process"]

#: Field 22 of ``/proc/<pid>/stat`` (``starttime``), counted from field 3 (``state``), the
#: first after the parenthesised name.
_STARTTIME = 22 - 3

#: This process's pid and start, read once per process (a forked child reads its own).
_own: tuple[int, str | None] | None = None


def parse_stat(text: bytes) -> tuple[str, str] | None:
    """The state and start time (clock ticks since boot) in the text of ``/proc/<pid>/stat``,
    or None if it is not such a text. The process's name, in parentheses, may hold spaces and
    parentheses itself: the fields are those after its last ``)``."""
    _, paren, tail = text.rpartition(b")")
    fields = tail.split()
    if not paren or len(fields) <= _STARTTIME or not fields[_STARTTIME].isdigit():
        return None
    return fields[0].decode("ascii", "replace"), fields[_STARTTIME].decode("ascii")


def _stat(pid: int) -> tuple[str, str] | None:
    """:func:`parse_stat` of process ``pid``; None if it cannot be read (no such process, no
    ``/proc``, or a process hidden from this one)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return parse_stat(fh.read())
    except OSError:
        return None


@functools.cache
def _boot_id() -> str:
    """The id of this boot of the machine; "" if there is none to read. Start times count
    from the boot, so a start of another boot is of a process that did not survive it."""
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as fh:
            return fh.read().strip()
    except (OSError, ValueError):
        return ""


def own_start() -> str | None:
    """When this process started, as ``"<boot id>:<pid namespace>:<clock ticks since boot>"``;
    None where that cannot be read (no ``/proc`` of this process's own)."""
    global _own
    pid = os.getpid()
    if _own is None or _own[0] != pid:
        _own = (pid, _read_own_start(pid))
    return _own[1]


def _read_own_start(pid: int) -> str | None:
    try:
        if os.readlink("/proc/self") != str(pid):
            return None  # a /proc of another pid namespace: its pids are not ours
    except OSError:
        return None  # no /proc
    stat = _stat(pid)
    return None if stat is None else _start(stat[1])


@functools.cache
def _pid_namespace() -> str:
    """This process's pid namespace (the inode ``/proc/self/ns/pid`` names); "" if unknown.
    A pid means a process only in its namespace: a run's row written in another one (a
    container sharing the host's name, say) cannot be judged by the pids seen here."""
    try:
        return os.readlink("/proc/self/ns/pid").removeprefix("pid:[").removesuffix("]")
    except OSError:
        return ""


def _start(ticks: str) -> str:
    return f"{_boot_id()}:{_pid_namespace()}:{ticks}"


def _same_namespace(start: str) -> bool:
    """Whether a recorded start was taken in this process's pid namespace."""
    parts = start.split(":")
    return len(parts) == 3 and parts[1] == _pid_namespace() != ""


def pid_alive(pid: int) -> bool:
    """Whether there is a process ``pid`` (whichever it is) that has not exited."""
    stat = _stat(pid)  # Linux: a zombie has exited already
    if stat is not None and stat[0] == "Z":
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OSError:
        return True
    return True


def process_alive(pid: int, start: str | None) -> bool:
    """Whether the process that recorded ``pid`` and ``start`` (a run's row, on this host) is
    still there: process ``pid`` has not exited, and started at ``start``, not later (a process
    that took the pid since) nor in another boot. Without a recorded start (a row written
    before starts were, or where none could be read), where starts cannot be read, or for a
    start taken in another pid namespace (whose pids this process cannot see: a run of a
    container that shares the host's name must not be taken for dead), the pid alone decides,
    as :func:`pid_alive`."""
    if start is None or own_start() is None or not _same_namespace(start):
        return pid_alive(pid)  # (another namespace's pid: as before starts were recorded)
    stat = _stat(pid)
    if stat is None:  # gone, or hidden from this process (hidepid): the pid alone tells
        return pid_alive(pid)
    state, ticks = stat
    return state != "Z" and _start(ticks) == start


def this_process(pid: int | None, start: str | None) -> bool:
    """Whether ``pid`` and ``start`` (a run's row, on this host) name this process: its pid,
    and its start unless the row has none."""
    return pid == os.getpid() and (start is None or start == own_start())
