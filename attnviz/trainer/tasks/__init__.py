"""Algorithmic tasks from the NTM paper. Each is a small module with one Task subclass;
register it in TASKS to make it available to ``attnviz train --task``."""

from __future__ import annotations

from .associative_recall import AssociativeRecall
from .base import Batch, Task
from .copy import Copy
from .multi_copy import MultiCopy
from .ngrams import NGrams
from .priority_sort import PrioritySort
from .repeat_copy import RepeatCopy

TASKS: dict[str, type[Task]] = {t.name: t for t in (Copy, RepeatCopy, AssociativeRecall, NGrams, PrioritySort,
                                                    MultiCopy)}


def task_class(name: str) -> type[Task]:
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}: choose one of {', '.join(TASKS)}")
    return TASKS[name]


def get_task(name: str, **options) -> Task:
    return task_class(name)(**options)


__all__ = ["TASKS", "Batch", "Task", "Copy", "RepeatCopy", "AssociativeRecall", "MultiCopy", "NGrams", "PrioritySort",
           "get_task", "task_class"]
