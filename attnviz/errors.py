"""The exceptions attnviz raises. Each carries one line a person can act on."""

from __future__ import annotations

import os


class AttnvizError(Exception):
    """Base class: every error attnviz raises on purpose. ``str(err)`` is one line."""


class OptionError(AttnvizError):
    """An option's value cannot work, whatever the input: the command line's exit code 2."""


class TraceError(AttnvizError):
    """A trace file, a trace in it or a dataset of that trace is unusable.

    The message reads ``FILE: trace NAME: dataset DATASET: PROBLEM``, leaving out
    what is not known.
    """

    def __init__(self, problem: str, path=None, trace: str | None = None, dataset: str | None = None):
        self.problem, self.path, self.trace, self.dataset = problem, path, trace, dataset
        super().__init__(format_location(path, trace, dataset) + problem)


def did_you_mean(word: str, choices) -> str:
    """'; did you mean A, B?' naming the choices closest to a mistyped word, or '' when none is close."""
    import difflib

    close = difflib.get_close_matches(str(word), list(choices), n=3, cutoff=0.5)
    return f"; did you mean {', '.join(close)}?" if close else ""


def format_location(path=None, trace: str | None = None, dataset: str | None = None) -> str:
    parts = []
    if path is not None:
        parts.append(os.fspath(path))
    if trace is not None:
        parts.append(f"trace {trace!r}")
    if dataset is not None:
        parts.append(f"dataset {dataset!r}")
    return "".join(p + ": " for p in parts)
