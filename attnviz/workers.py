"""Worker processes: how many this machine gives, and a pool of them (forked, so that workers
inherit what the parent has loaded)."""

from __future__ import annotations

import os


def default_jobs() -> int:
    """The cores this process may run on (its CPU affinity where the system has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def context():
    """multiprocessing's fork context where the system can fork, else its default."""
    import multiprocessing as mp

    return mp.get_context("fork") if "fork" in mp.get_all_start_methods() else mp.get_context()


def pool(jobs: int):
    """A multiprocessing pool of ``jobs`` workers, forked where the system can fork."""
    return context().Pool(jobs)
