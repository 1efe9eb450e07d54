"""A disk cache of drawn frames and colormap tables, so that `attnviz plot` of one trace
need neither import matplotlib's drawing code nor run it when it has drawn that frame before.

A frame (axes, ticks, titles, labels, colour bars: everything but the heatmap cells) depends
only on the figure's geometry and options, and drawing it is most of the cost of a plot. An
entry's key names everything that shapes its pixels: the options, the geometry, attnviz's
version and the installed matplotlib. Frames are drawn in matplotlib's default style, so a
local matplotlibrc cannot change them behind the key's back.

The folder is ``$ATTNVIZ_CACHE_DIR`` if set (empty, ``0`` or ``off`` turns the cache off),
else ``$XDG_CACHE_HOME/attnviz`` or ``~/.cache/attnviz``. It is safe to delete at any time.
A damaged, foreign or unreadable entry is ignored and redrawn; a cache that cannot be
written is simply not written. Entries are plain arrays read with ``allow_pickle=False``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import tempfile
from pathlib import Path

import numpy as np

from . import __version__

ENTRY_VERSION = 4  # bump whenever the way frames, title strips or their boxes are drawn changes
MAX_ENTRIES = 256  # about 30 kB each: the oldest go first beyond this


def default_dir() -> Path | None:
    env = os.environ.get("ATTNVIZ_CACHE_DIR")
    if env is not None:
        return None if env.strip().lower() in ("", "0", "off", "none") else Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "attnviz"


def matplotlib_identity() -> str:
    """Where matplotlib is installed and its version, found without importing it."""
    spec = importlib.util.find_spec("matplotlib")
    if spec is None or not spec.origin:
        return "none"
    version_file = Path(spec.origin).with_name("_version.py")
    try:
        return f"{spec.origin}|{version_file.read_text()}"
    except OSError:
        return f"{spec.origin}|{os.stat(spec.origin).st_mtime_ns}"


class FrameCache:
    """Frames (pixels and panel boxes) and colormap tables on disk, by key."""

    def __init__(self, directory: str | Path, max_entries: int = MAX_ENTRIES):
        self.dir = Path(directory)
        self.max_entries = max_entries
        self._salt = f"{ENTRY_VERSION}|{__version__}|{matplotlib_identity()}"

    def _path(self, kind: str, key: str) -> tuple[Path, str]:
        full = f"{self._salt}|{kind}|{key}"
        return self.dir / f"{kind}-{hashlib.sha256(full.encode()).hexdigest()[:32]}.npz", full

    def load(self, kind: str, key: str) -> dict[str, np.ndarray] | None:
        """The arrays stored under (kind, key), or None if absent or unusable."""
        path, full = self._path(kind, key)
        try:
            with np.load(path, allow_pickle=False) as z:
                if str(z["key"]) != full:
                    return None
                return {k: z[k] for k in z.files if k != "key"}
        except Exception:  # absent, truncated, foreign: draw it again
            return None

    def save(self, kind: str, key: str, **arrays: np.ndarray) -> None:
        path, full = self._path(kind, key)
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.dir, prefix=".tmp-", suffix=".npz")
            try:
                with os.fdopen(fd, "wb") as f:
                    np.savez_compressed(f, key=np.array(full), **arrays)
                os.replace(tmp, path)
            except BaseException:
                os.unlink(tmp)
                raise
            self._prune()
        except OSError:
            pass  # a read-only or full disk costs speed, never a plot

    def _prune(self) -> None:
        entries = list(self.dir.glob("*.npz"))
        if len(entries) <= self.max_entries:
            return
        entries.sort(key=lambda p: p.stat().st_mtime_ns)
        for p in entries[: len(entries) - self.max_entries]:
            p.unlink(missing_ok=True)
