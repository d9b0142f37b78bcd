"""The code version of a run: what really ran, the notebook file, the environment.

Snapshots are stored content-addressed (sha256): a thousand runs of an unchanged notebook store
it once. Kinds: ``history`` (the cells executed in this kernel, in order), ``notebook`` (the
notebook file, outputs stripped), ``script`` (the script file of a run started from a script) and
``environment`` (Python, platform, packages, git).
"""

from .capture import capture_snapshots, load_snapshot

__all__ = ["capture_snapshots", "load_snapshot"]
