"""Files attached to a run: copied under the run's artifact folder and indexed in the store.

Every file is written to a temporary name and renamed into place, so a failed copy never leaves
a half-written artifact behind; it gets the mode ``open()`` would give it (0644 under umask 022)
first.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

from ..exceptions import InvalidInputError, LocalFileNotFoundError
from ..file_modes import file_mode
from .entities import FileInfo
from .validation import check_text

__all__ = ["ArtifactWriter", "check_artifact_path", "list_folder"]


RUNS_SCHEME = "runs:/"


def split_runs_uri(uri: str) -> tuple[str, str] | None:
    """``(run id, artifact path)`` of ``runs:/<run_id>/<path>`` (the path may be empty), or
    None for any other URI."""
    if not uri.startswith(RUNS_SCHEME):
        return None
    run_id, _, path = uri[len(RUNS_SCHEME) :].strip("/").partition("/")
    return run_id, path.strip("/")


def list_folder(root: Path, path: str) -> list[FileInfo]:
    """MLflow's listing of one folder: the files and folders directly in ``root / path`` (a
    relative POSIX path, '' for ``root`` itself), sorted, each with its path from ``root``.
    Nothing for a file, or a path with nothing there."""
    folder = root / path if path else root
    if not folder.is_dir():
        return []
    entries = []
    with os.scandir(folder) as found:
        for entry in found:
            shown = f"{path}/{entry.name}" if path else entry.name
            if entry.is_dir():
                entries.append(FileInfo(shown, True, None))
            else:
                entries.append(FileInfo(shown, False, entry.stat().st_size))
    return sorted(entries, key=lambda info: info.path)


def check_artifact_path(path: str | None, what: str = "artifact_path") -> str:
    """A relative POSIX path inside the run's artifact folder ('' for its root)."""
    if path is None or path in ("", "."):
        return ""
    text = str(path).replace("\\", "/")
    pure = PurePosixPath(text)
    if pure.is_absolute() or ".." in pure.parts or text.startswith("~"):
        raise InvalidInputError(
            f"{what} {path!r} must be a relative path inside the run's artifacts "
            "(no leading '/', '~' or '..')"
        )
    return str(pure)


class ArtifactWriter:
    """Writes the artifacts of one run under ``root`` and reports them for the index."""

    def __init__(self, root: Path):
        self.root = root

    def _target_dir(self, artifact_path: str | None) -> Path:
        sub = check_artifact_path(artifact_path)
        return self.root / sub if sub else self.root

    def _check_room(self, path: Path, folder: bool = False) -> None:
        """Refuse to write the file ``path`` (the folder, with ``folder``) under ``root`` when
        an artifact of the run is in the way: a file where a folder of ``path`` goes, or a
        folder where the file goes. Callers check every path before they write any."""
        rel = PurePosixPath(path.relative_to(self.root).as_posix())
        folders = [*reversed(rel.parents[:-1]), *([rel] if folder else [])]
        for part in folders:
            if (self.root / part).is_dir():
                continue
            if (self.root / part).exists():
                raise InvalidInputError(
                    f"cannot write the artifact {str(rel)!r}: the run's artifact {str(part)!r} "
                    "is a file, and a folder is needed there; log under another path"
                )
            break
        if not folder and path.is_dir():
            raise InvalidInputError(
                f"cannot write the artifact {str(rel)!r}: it is a folder of the run's "
                "artifacts; name a file, or log under another path"
            )

    def _entry(self, file: Path) -> tuple[str, int]:
        return file.relative_to(self.root).as_posix(), file.stat().st_size

    def copy_file(self, local_path: str | os.PathLike[str], artifact_path: str | None) -> list:
        src = Path(local_path)
        if src.is_dir():  # as MLflow: the folder itself, under artifact_path
            inside = f"{artifact_path.rstrip('/')}/{src.name}" if artifact_path else src.name
            return self.copy_dir(src, inside)
        if not src.is_file():
            raise LocalFileNotFoundError(
                f"log_artifact needs an existing file or folder; {str(src)!r} does not exist"
            )
        dest = self._target_dir(artifact_path) / src.name
        self._check_room(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        _atomic_copy(src, dest)
        return [self._entry(dest)]

    def copy_dir(self, local_dir: str | os.PathLike[str], artifact_path: str | None) -> list:
        src = Path(local_dir)
        if not src.is_dir():
            if src.exists():
                raise InvalidInputError(
                    f"log_artifacts needs a directory; {str(src)!r} is a file (use log_artifact)"
                )
            raise LocalFileNotFoundError(
                f"log_artifacts needs an existing directory; {str(src)!r} does not exist"
            )
        target = self._target_dir(artifact_path)
        files = sorted(p for p in src.rglob("*") if p.is_file())
        dests = [target / file.relative_to(src) for file in files]
        self._check_room(target, folder=True)
        for dest in dests:
            self._check_room(dest)
        target.mkdir(parents=True, exist_ok=True)
        entries = []
        for file, dest in zip(files, dests, strict=True):
            dest.parent.mkdir(parents=True, exist_ok=True)
            _atomic_copy(file, dest)
            entries.append(self._entry(dest))
        return entries

    def write_bytes(self, data: bytes, artifact_file: str) -> list:
        dest = self.root / _file_path(artifact_file)
        self._check_room(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write(dest, data)
        return [self._entry(dest)]

    def write_text(self, text: str, artifact_file: str) -> list:
        if not isinstance(text, str):
            raise TypeError(f"log_text needs a str, got {type(text).__name__}")
        return self.write_bytes(check_text(text, "log_text's text").encode("utf-8"), artifact_file)

    def write_dict(self, dictionary: Any, artifact_file: str) -> list:
        suffix = PurePosixPath(artifact_file).suffix.lower()
        if suffix in (".yaml", ".yml"):
            try:
                import yaml
            except ImportError as exc:
                raise InvalidInputError(
                    "writing YAML needs PyYAML (pip install pyyaml); or use a .json file name"
                ) from exc
            try:
                text = yaml.safe_dump(dictionary, sort_keys=False)
            except yaml.YAMLError as exc:
                raise InvalidInputError(
                    f"log_dict could not write the value as YAML: {exc}; plain dicts, lists, "
                    "strings and numbers can be"
                ) from exc
        else:
            try:
                text = json.dumps(dictionary, indent=2, default=_jsonable)
            except (TypeError, ValueError) as exc:
                raise InvalidInputError(f"log_dict could not serialise the value: {exc}") from exc
        return self.write_text(text, artifact_file)

    def write_figure(
        self, figure: Any, artifact_file: str, save_kwargs: dict[str, Any] | None = None
    ) -> list:
        kwargs = dict(save_kwargs or {})
        library, suffixes = _figure_suffixes(figure)
        name = PurePosixPath(_file_path(artifact_file)).name
        suffix = PurePosixPath(name).suffix.lower()
        if suffix not in suffixes and (suffix or "format" not in kwargs):
            raise InvalidInputError(
                f"log_figure cannot save a {library} figure as {artifact_file!r}; "
                f"name a file ending in one of {', '.join(suffixes)}"
            )
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / name
            if library == "matplotlib":
                figure.savefig(out, **kwargs)
            elif suffix in (".html", ".htm"):
                figure.write_html(str(out), **{"include_plotlyjs": "cdn", **kwargs})
            elif suffix == ".json":
                out.write_text(figure.to_json(**kwargs))
            else:
                try:
                    figure.write_image(str(out), **kwargs)
                except (ValueError, ImportError, RuntimeError) as exc:
                    raise InvalidInputError(
                        f"saving a Plotly figure as {suffix or 'an image'} needs kaleido "
                        f"(pip install kaleido); or log it as .html or .json ({exc})"
                    ) from exc
            return self.write_bytes(out.read_bytes(), artifact_file)


#: The file types a Plotly figure is saved as: HTML and JSON, and the images kaleido draws.
PLOTLY_SUFFIXES = (".html", ".htm", ".json", ".png", ".jpg", ".jpeg", ".webp", ".svg", ".pdf")


def _file_path(artifact_file: str) -> str:
    """``artifact_file`` checked: the relative path of a file inside the run's artifacts."""
    rel = check_artifact_path(artifact_file, "artifact_file")
    if not rel or str(artifact_file).replace("\\", "/").endswith("/"):
        raise InvalidInputError(
            f"artifact_file must name a file, e.g. 'notes/summary.txt'; got {artifact_file!r}"
        )
    return rel


def _figure_suffixes(figure: Any) -> tuple[str, tuple[str, ...]]:
    """The library of ``figure`` ('matplotlib' or 'Plotly') and the file name endings it can
    be saved under."""
    module = type(figure).__module__
    if module.startswith("matplotlib"):
        if not hasattr(figure, "savefig"):
            raise InvalidInputError(
                f"log_figure takes a matplotlib Figure; got a {type(figure).__name__} "
                "(pass its .figure, e.g. log_figure(ax.figure, ...))"
            )
        formats = figure.canvas.get_supported_filetypes()
        return "matplotlib", tuple(f".{f}" for f in formats)
    if module.startswith("plotly"):
        return "Plotly", PLOTLY_SUFFIXES
    raise InvalidInputError(
        "log_figure takes a matplotlib or Plotly figure; got "
        f"{type(figure).__module__}.{type(figure).__name__}"
    )


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return value.tolist()
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _atomic_copy(src: Path, dest: Path) -> None:
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    os.close(fd)
    try:
        shutil.copyfile(src, tmp)
        os.chmod(tmp, file_mode())
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _atomic_write(dest: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, file_mode())
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
