"""attnviz: draw and check attention traces of memory-augmented networks.

The public API is imported lazily, so that ``attnviz --help`` starts without numpy,
h5py or matplotlib.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "Trace": "trace", "TraceInfo": "io", "TraceRecorder": "recorder",
    "AttnvizError": "errors", "TraceError": "errors",
    "load": "io", "save": "io", "list_traces": "io", "iter_traces": "io", "open_traces": "io",
    "validate_file": "io", "convert": "io", "trace_files": "io", "trace_entries": "io", "summarize": "inspect",
    "copy_diagnostics": "analysis", "addressing_summary": "analysis",
    "plot_trace": "plot", "draw_panel": "plot", "export": "plot", "PlotOptions": "plot", "plot_files": "batch",
    "register_colormap": "plot.colors", "animate": "plot.animate", "plot_run": "plot.run",
    "render": "plot", "compare_traces": "plot.pair",
    "train": "training", "record": "training", "generalise": "generalisation", "sweep": "sweep",
    "compare_runs": "compare",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'attnviz' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
