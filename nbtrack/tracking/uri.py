"""Where the store lives: resolving tracking URIs.

Order of precedence: the ``NBTRACK_TRACKING_URI`` environment variable, then
:func:`set_tracking_uri`, then ``.nbtrack/`` in the working directory. :func:`set_tracking_uri`
puts its store in that variable too (unless the variable was set already), as MLflow does, so
that processes started from this one (a joblib or multiprocessing worker, a subprocess) use the
same store.

Accepted forms:

- a directory (``runs/``, ``/data/tracking``): the store is ``<dir>/nbtrack.db`` and artifacts go
  to ``<dir>/artifacts/``;
- a database file ending in ``.db``, ``.sqlite`` or ``.sqlite3``: artifacts go beside it, in
  ``<stem>-artifacts/``;
- ``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db`` (SQLAlchemy's spelling);
- ``file:///some/dir`` for a directory.
"""

from __future__ import annotations

import contextvars
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from ..exceptions import NbtrackWarning, TrackingURIError

__all__ = [
    "ENV_VAR",
    "StoreLocation",
    "get_tracking_uri",
    "is_tracking_uri_set",
    "resolve",
    "set_tracking_uri",
]

ENV_VAR = "NBTRACK_TRACKING_URI"
EXPERIMENT_ID_VAR = "NBTRACK_EXPERIMENT_ID"
EXPERIMENT_NAME_VAR = "NBTRACK_EXPERIMENT_NAME"
DEFAULT_DIR = ".nbtrack"
DB_NAME = "nbtrack.db"
DB_SUFFIXES = (".db", ".sqlite", ".sqlite3")
SUPPORTED = (
    "a directory path, a path ending in .db/.sqlite/.sqlite3, "
    "sqlite:///path/to/file.db, or file:///path/to/dir"
)

_explicit_uri: str | None = None
#: While an exported notebook replays a tracked cell that made another run: the throwaway
#: store every tracking call of that cell goes to (see ``fluent._throwaway_store``); it wins over
#: the rest. A context variable: other threads (a training loop's logger started earlier, say)
#: keep logging to the real store meanwhile.
_throwaway: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "nbtrack_throwaway_store", default=None
)
#: The values set_tracking_uri and set_experiment put in the variables (here or in a process
#: that started this one). Such a tracking URI is a default, which set_tracking_uri overrides;
#: any other value was set from outside and wins.
_EXPORT_MARK = "_NBTRACK_EXPORTED_TRACKING_URI"
_EXPERIMENT_MARK = "_NBTRACK_EXPORTED_EXPERIMENT_ID"
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):")


@dataclass(frozen=True)
class StoreLocation:
    """The resolved files of a store."""

    db_path: Path
    artifact_root: Path

    @property
    def uri(self) -> str:
        """``sqlite:///`` and the absolute path, ``%``, ``?`` and ``#`` in it escaped (a URI's
        path is percent-decoded when read back, and would end at ``?`` or ``#``)."""
        path = str(self.db_path).replace("%", "%25").replace("?", "%3F").replace("#", "%23")
        return "sqlite:///" + path


def set_tracking_uri(uri: str | os.PathLike[str]) -> None:
    """Set where runs are stored for this process, and the processes it starts.

    Parameters
    ----------
    uri
        A directory, a ``.db`` file path, or ``sqlite:///path.db``. Checked at once: an unsupported
        scheme raises :class:`~nbtrack.exceptions.TrackingURIError`.

    Notes
    -----
    The ``NBTRACK_TRACKING_URI`` environment variable, when set from outside (by a job runner,
    to redirect a notebook that sets its own URI), takes precedence; a warning says so.
    Otherwise the URI goes into that variable, as MLflow does, so that processes started from
    this one use the same store, unless they set their own.
    """
    text = os.fspath(uri)
    location = resolve(text)  # validate now, not at the first log call
    outside = _outside_value()
    if outside and not _same_store(outside, location):
        warnings.warn(
            f"{ENV_VAR}={outside!r} is set and takes precedence over set_tracking_uri({text!r})",
            NbtrackWarning,
            stacklevel=2,
        )
    global _explicit_uri
    # Kept as given: a relative path means the working directory of the moment, here after an
    # os.chdir and in a process started from here alike (which starts in this one's, unless
    # told otherwise).
    _explicit_uri = text
    if outside is None:
        before = _inherited_value()
        exported_id = os.environ.get(EXPERIMENT_ID_VAR)
        moved = not (before and _same_store(before, location))
        if moved and exported_id and exported_id == os.environ.get(_EXPERIMENT_MARK):
            # An experiment id exported for another store means nothing in this one: the
            # processes started from here find the experiment by its name, as this one does.
            os.environ.pop(EXPERIMENT_ID_VAR, None)
        os.environ[ENV_VAR] = os.environ[_EXPORT_MARK] = text


def export_experiment(experiment_id: str, name: str) -> None:
    """Put the experiment of ``set_experiment`` in the environment, as MLflow does, for the
    processes started from this one."""
    os.environ[EXPERIMENT_NAME_VAR] = name
    os.environ[EXPERIMENT_ID_VAR] = os.environ[_EXPERIMENT_MARK] = experiment_id


def is_tracking_uri_set() -> bool:
    """Whether a tracking URI was chosen (by :func:`set_tracking_uri` here or in a process that
    started this one, or by ``NBTRACK_TRACKING_URI``) rather than the default ``.nbtrack/``."""
    return bool(_explicit_uri or os.environ.get(ENV_VAR))


def get_tracking_uri() -> str:
    """The tracking URI in force, as a ``sqlite:///`` URI of the absolute database path."""
    return resolve(_current_uri_text()).uri


def set_registry_uri(uri: str | os.PathLike[str]) -> None:
    """MLflow's call, for code that sets both URIs to one store: nbtrack keeps the model
    registry in the tracking store, so this changes nothing. A URI of another store (or none)
    gets a warning saying it is not used; the tracking URI decides, now and later."""
    text = os.fspath(uri)
    if not _same_store(text, resolve(_current_uri_text())):
        warnings.warn(
            f"set_registry_uri({text!r}): nbtrack keeps the model registry in the tracking "
            f"store ({get_tracking_uri()}, and whatever set_tracking_uri sets later); this URI "
            "is not used",
            NbtrackWarning,
            stacklevel=2,
        )


def get_registry_uri() -> str:
    """Where the model registry is: the tracking store (see :func:`set_registry_uri`)."""
    return get_tracking_uri()


def _same_store(text: str, location: StoreLocation) -> bool:
    """Whether the URI ``text`` names the store at ``location`` (False if it names none)."""
    try:
        return resolve(text).db_path == location.db_path
    except TrackingURIError:
        return False


def _inherited_value() -> str | None:
    """The environment variable when :func:`set_tracking_uri` put it there (in this process or
    one that started it): a default, which this process's own ``set_tracking_uri`` overrides."""
    env = os.environ.get(ENV_VAR)
    return env if env and env == os.environ.get(_EXPORT_MARK) else None


def _outside_value() -> str | None:
    """The environment variable when it was set from outside nbtrack: it wins."""
    env = os.environ.get(ENV_VAR)
    return env if env and env != os.environ.get(_EXPORT_MARK) else None


def _current_uri_text() -> str:
    throwaway = _throwaway.get()
    if throwaway is not None:
        return throwaway
    env = os.environ.get(ENV_VAR)
    if env and env != os.environ.get(_EXPORT_MARK):  # set from outside: it wins
        return env
    return _explicit_uri or env or DEFAULT_DIR  # env here: inherited from a parent, a default


def reset_tracking_uri() -> None:
    """Forget :func:`set_tracking_uri`, and take its store out of the environment (used by
    tests)."""
    global _explicit_uri
    if _inherited_value() is not None:
        os.environ.pop(ENV_VAR, None)
    os.environ.pop(_EXPORT_MARK, None)
    _explicit_uri = None


def uri_scheme(text: str) -> str | None:
    """The lower-cased scheme of a URI such as ``s3://b/k`` or ``sqlite:///x.db``; None for a
    plain path (``C:\\runs`` is a Windows drive, not a scheme)."""
    match = _SCHEME.match(text)
    if match is None or (len(match.group(1)) == 1 and os.name == "nt"):
        return None
    return match.group(1).lower()


def resolve(uri: str | os.PathLike[str] | None = None) -> StoreLocation:
    """Turn a tracking URI (default: the one in force) into the store's files."""
    text = _current_uri_text() if uri is None else os.fspath(uri)
    text = text.strip()
    if not text:
        raise TrackingURIError(f"the tracking URI is empty; use {SUPPORTED}")
    scheme = uri_scheme(text)
    if scheme is not None:
        parsed = urlparse(text)
        if scheme == "sqlite":
            if not text.lower().startswith("sqlite:///"):
                raise TrackingURIError(
                    f"{text!r}: a sqlite URI needs three slashes and a file path, "
                    "e.g. sqlite:///runs.db (relative) or sqlite:////abs/path/runs.db"
                )
            name = unquote(text[len("sqlite:///") :])
            if name == ":memory:" or name.startswith("file:"):
                raise TrackingURIError(
                    f"{text!r}: nbtrack keeps runs in a database file beside their artifacts, "
                    "not in memory; name a file, e.g. sqlite:///runs.db"
                )
            if "?" in text:
                raise TrackingURIError(
                    f"{text!r}: query parameters are not supported in a sqlite URI; name just "
                    "the file, e.g. sqlite:///runs.db"
                )
            if not name.strip():
                raise TrackingURIError(
                    f"{text!r} names no database file; e.g. sqlite:///runs.db (relative) or "
                    "sqlite:////abs/path/runs.db"
                )
            path = Path(name)
            if name.endswith(("/", os.sep)) or path.expanduser().is_dir():
                raise TrackingURIError(
                    f"{text!r} names a directory; a sqlite URI names a database file "
                    f"(e.g. sqlite:///{(path / DB_NAME).as_posix()}), or pass the directory "
                    "itself as a path"
                )
            return _file_location(path)
        if scheme == "file":
            if parsed.netloc not in ("", "localhost"):
                raise TrackingURIError(
                    f"{text!r} names the host {parsed.netloc!r}; a file URI must be local: "
                    "file:///path/to/dir"
                )
            return _dir_or_file(Path(unquote(parsed.path)))
        raise TrackingURIError(
            f"unsupported tracking URI scheme {scheme!r} in {text!r}; supported: {SUPPORTED}"
        )
    if text.lower() in _MLFLOW_SERVICES:
        raise TrackingURIError(
            f"{text!r} is MLflow's name for a Databricks workspace, which nbtrack does not "
            f"reach; use {SUPPORTED} (./{text} for a folder of that name)"
        )
    return _dir_or_file(Path(text).expanduser())


#: Bare tracking URIs MLflow reads as a remote service, not as a path.
_MLFLOW_SERVICES = ("databricks", "databricks-uc", "uc")


def _dir_or_file(path: Path) -> StoreLocation:
    if path.suffix.lower() in DB_SUFFIXES and not path.is_dir():
        return _file_location(path)
    if path.exists() and not path.is_dir():
        raise TrackingURIError(
            f"{path} exists and is not a directory or a .db file; use {SUPPORTED}"
        )
    root = path.resolve()
    return StoreLocation(root / DB_NAME, root / "artifacts")


def _file_location(path: Path) -> StoreLocation:
    db = path.expanduser().resolve()
    if db.name == DB_NAME:
        return StoreLocation(db, db.parent / "artifacts")
    return StoreLocation(db, db.parent / f"{db.stem}-artifacts")
