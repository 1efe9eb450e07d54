"""The attnviz command line: one function per command, each a thin layer over the Python API.

Heavy modules (numpy, h5py, matplotlib) are imported inside the commands, so that
``attnviz --help`` starts at once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import functools
import importlib
import inspect as pyinspect  # `inspect` is a command here
import math
import re
import sys
from json.encoder import encode_basestring_ascii as _json_quote
from pathlib import Path
from typing import Annotated

import typer
import typer.core
from rich.console import Console
from rich.text import Text

from . import __version__, workers

EXIT_USAGE = 2  # a mistake in the command line: one line, and the command's --help to read
EXIT_BUG = 3  # an error attnviz did not expect: one line asking for a report
EXIT_DIVERGED = 4  # train: a loss or gradient went non-finite; the run stopped before that step's update
_UsageError = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")
_click_globals = importlib.import_module(_UsageError.__module__.rpartition(".")[0] + ".globals")  # click's


class _Group(typer.core.TyperGroup):
    """Usage errors as one line, ``attnviz: error: ...`` and exit 2, instead of a framed panel."""

    def main(self, *args, standalone_mode: bool = True, **kwargs):
        try:
            rv = super().main(*args, standalone_mode=False, **kwargs)
        except _UsageError as e:
            if type(e).__name__ == "NoArgsIsHelpError":  # `attnviz` alone: the help, as asked
                out.print(Text(e.ctx.get_help()))
                rv = 0
            else:
                see = f" (see '{e.ctx.command_path} --help')" if e.ctx is not None else ""
                error_line(" ".join(e.format_message().removeprefix("Invalid value: ").split()) + see)
                rv = EXIT_USAGE
        except typer.Abort:
            error_line("interrupted")
            rv = 130
        if not standalone_mode:
            return rv
        sys.exit(rv if isinstance(rv, int) else 0)


def _reflow(text: str | None) -> str | None:
    """A docstring's paragraphs, each on one line: rich wraps them to the terminal (typer keeps the
    source's line breaks, which would break sentences mid-line)."""
    if not text:
        return text
    return "\n\n".join(" ".join(p.split()) for p in pyinspect.cleandoc(text).split("\n\n"))


# plot's and animate's figure options, in help panels of their own: a table of 25 options with
# --no-phase-marker beside them leaves a narrow column for their help at 80 columns.
HELP_PANELS = {
    "Figure": ("layout", "panels", "grid", "head", "time", "locations", "order", "reduce", "figsize", "dpi",
               "fontsize", "transparent"),
    "Colours": ("cmap", "panel_cmap", "limits", "colorbar", "diff_cmap", "diff_limit"),
    "Run folders": ("as_json", "as_csv"),
    "Title and markers": ("title", "title_text", "marker", "phase_marker"),
}


class _Command(typer.core.TyperCommand):
    """Usage lines as people write them: ``attnviz plot [OPTIONS] FILES...``; help that reads at 80
    columns."""

    def __init__(self, *args, help: str | None = None, **kwargs):
        super().__init__(*args, help=_reflow(help), **kwargs)
        panel = {name: title for title, names in HELP_PANELS.items() for name in names}
        for param in self.params:
            if param.name in panel:
                param.rich_help_panel = panel[param.name]

    def collect_usage_pieces(self, ctx):
        return [p[1:-1] if p.startswith("{") and p.endswith("}") else p for p in super().collect_usage_pieces(ctx)]


app = typer.Typer(
    cls=_Group,
    name="attnviz",
    help="Draw and check attention traces of memory networks (Neural Turing Machines and kin).",
    rich_markup_mode="rich",
    no_args_is_help=True,
    pretty_exceptions_enable=False,  # a crash must never dump arrays or a traceback
    context_settings={"help_option_names": ["-h", "--help"]},
)
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def error_line(message: str) -> None:
    """Print one plain line to stderr; user text is never read as rich markup."""
    err.print(Text(f"attnviz: error: {message}"))


def cli_errors(fn):
    """Turn attnviz's own errors into one line on stderr and exit code 1; anything
    unexpected into one line and exit code 3 (never a traceback)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from .errors import AttnvizError, OptionError

        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except _UsageError as e:  # an option the command checked itself: still a usage error
            if e.ctx is None:
                e.ctx = _click_globals.get_current_context(silent=True)
            raise
        except OptionError as e:
            error_line(f"{e} (see 'attnviz {fn.__name__} --help')")
            raise typer.Exit(EXIT_USAGE) from None
        except AttnvizError as e:
            error_line(str(e))
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            error_line("interrupted")
            raise typer.Exit(130) from None
        except MemoryError:
            error_line("out of memory; lower --max-bytes or draw a window with --time/--locations")
            raise typer.Exit(1) from None
        except Exception as e:  # a bug: still one line, and a way to report it
            error_line(f"unexpected {type(e).__name__}: {e} (please report this)")
            raise typer.Exit(EXIT_BUG) from None

    return wrapper


def _choices(name: str, values) -> type[enum.Enum]:
    """An Enum of fixed names, so that --help and shell completion list them and a wrong one exits 2."""
    return enum.Enum(name, {v.replace("-", "_"): v for v in values}, type=str)


# Listed here, not imported, so that `attnviz --help` loads no numpy; tests keep them equal to the
# library's own registries.
Layout = _choices("Layout", ("grid", "paper", "addressing", "dnc"))
Reduction = _choices("Reduction", ("max", "mean"))
Order = _choices("Order", ("index", "written"))
TaskName = _choices("TaskName", ("copy", "repeat-copy", "associative-recall", "ngrams", "priority-sort",
                                         "multi-copy"))
Optimizer = _choices("Optimizer", ("adam", "rmsprop"))
ModelName = _choices("ModelName", ("ntm", "dnc"))
Controller = _choices("Controller", ("lstm", "feedforward"))
Format = _choices("Format", ("png", "svg", "pdf", "html"))


def _listed(choices: type[enum.Enum]) -> str:
    """'a, b or c': the choices in help that names them in words (its metavar is one word)."""
    *first, last = (c.value for c in choices)
    return f"{', '.join(first)} or {last}" if first else last


def version_callback(value: bool):
    if value:
        out.print(f"attnviz {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[bool, typer.Option("--version", callback=version_callback, is_eager=True,
                                          help="Print the version and exit.")] = False,
):
    """Draw and check attention traces of memory networks (Neural Turing Machines and kin).

    Trace files are HDF5 (.h5, .hdf5) or NPZ (.npz) in the format of docs/trace-format.md.
    """


def parse_max_bytes(value: str | None) -> int | None:
    if value is None:
        return None
    from .io import parse_size

    try:
        return parse_size(value)
    except ValueError:
        raise typer.BadParameter(f"--max-bytes {value!r} is not a size (e.g. 500M, 4G)") from None


Files = Annotated[list[Path], typer.Argument(help="Trace files (.h5, .hdf5, .npz) and folders (a folder: every "
                                                  "trace file in it, recursively).", metavar="FILES...",
                                             show_default=False)]
MaxBytes = Annotated[str | None, typer.Option(
    "--max-bytes", metavar="SIZE", help="Largest array to read whole, e.g. 500M or 8G "
                        "\\[default: $ATTNVIZ_MAX_BYTES or 4G].", show_default=False)]
AllowExternal = Annotated[bool, typer.Option(
    "--allow-external", help="Follow what leads out of the files and folders given: HDF5 external links, "
                             "external and virtual datasets, filter plugins, symbolic links in folders. Only "
                             "for files you trust; refused by default.")]


# --------------------------------------------------------------------- inspect


@app.command(cls=_Command)
@cli_errors
def inspect(
    files: Files,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list, one summary per file readable, "
                                                        "instead of tables.")] = False,
    max_bytes: MaxBytes = None,
    allow_external: AllowExternal = False,
    jobs: Annotated[int | None, typer.Option("--jobs", "-j", metavar="N", help="Processes reading a file of "
                                             "more than 1,000 traces \\[default: one per core]; 1 reads in "
                                             "this process alone.", show_default=False)] = None,
):
    """Show the traces in trace files: datasets, shapes, dtypes, value ranges, metadata, how many values
    are NaN or infinite (from which step) where there are any, and how each head addressed where the
    addressing stages are recorded (content lookups, shifts, stays); for an ngrams trace, the memory
    location each context uses; for a priority sort, the line through its write locations against the
    priorities (slope, intercept, R squared) and how it reads them back.

    Python: [bold]attnviz.summarize(path)[/bold]
    """

    from .errors import AttnvizError, OptionError
    from .inspect import summarize
    from .io import trace_entries

    limit = parse_max_bytes(max_bytes)
    if jobs is not None and jobs < 1:
        raise OptionError(f"--jobs {jobs}: give 1 or more worker processes")
    summaries, failed = [], False
    for path, problem in trace_entries(files, allow_external):
        try:
            if problem:
                raise problem
            summaries.append(summarize(path, limit, allow_external, jobs or workers.default_jobs()))
        except AttnvizError as e:
            error_line(str(e))
            failed = True
    if as_json:
        _print_json(summaries)
    else:
        for s in summaries:
            _print_summary(s)
    for s in summaries:
        for t in s["traces"]:
            for line in t["problems"]:
                error_line(line)
                failed = True
    if failed:
        raise typer.Exit(1)


def _print_json(data) -> None:
    """Indented JSON on stdout, the text of ``json.dump(data, indent=2)``, written in pieces as it is
    made (rich's print_json holds the whole text several times over: 1.4 GB for 10,000 traces)."""
    parts: list[str] = []
    _json_parts(data, parts, "\n", sys.stdout.write)
    sys.stdout.write("".join(parts) + "\n")


def _json_float(x: float) -> str:
    return float.__repr__(x) if x - x == 0 else "NaN" if x != x else "Infinity" if x > 0 else "-Infinity"


def _json_scalar(x) -> str | None:
    """The JSON text of a string, number, bool or None, as json writes it; None for anything else."""
    if isinstance(x, str):
        return _json_quote(x)
    if x is None or isinstance(x, bool):
        return "null" if x is None else "true" if x else "false"
    if isinstance(x, int):
        return int.__repr__(x)
    return _json_float(x) if isinstance(x, float) else None


def _json_key(key) -> str:
    """A mapping's key as json writes it: as a string."""
    text = key if isinstance(key, str) else _json_scalar(key)
    if text is None:
        raise TypeError(f"keys must be str, int, float, bool or None, not {type(key).__name__}")
    return _json_quote(text)


_JSON_SCALARS = {str: _json_quote, float: _json_float, int: int.__repr__}


def _json_parts(obj, parts: list, newline: str, write) -> None:
    """Append the JSON text of ``obj`` to ``parts``, indented as json.dumps(obj, indent=2) indents it
    (byte for byte: tested), handing full pieces to ``write``. json's own indented encoder passes
    each value up through one generator per level of nesting: 2.5 times slower on `inspect --json`."""
    quote, scalar = _json_quote, _JSON_SCALARS
    inner = newline + "  "
    if isinstance(obj, dict) and obj:
        sep = "{" + inner
        for key, item in obj.items():
            name = quote(key) if type(key) is str else _json_key(key)
            text = scalar.get(type(item), _json_scalar)(item)
            if text is None:
                parts.append(f"{sep}{name}: ")
                _json_parts(item, parts, inner, write)
            else:
                parts.append(f"{sep}{name}: {text}")
            sep = "," + inner
        parts.append(newline + "}")
    elif isinstance(obj, list | tuple) and obj:
        sep = "[" + inner
        for item in obj:
            text = scalar.get(type(item), _json_scalar)(item)
            if text is None:
                parts.append(sep)
                _json_parts(item, parts, inner, write)
            else:
                parts.append(sep + text)
            sep = "," + inner
        parts.append(newline + "]")
    else:
        text = "{}" if isinstance(obj, dict) else "[]" if isinstance(obj, list | tuple) else _json_scalar(obj)
        if text is None:
            raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")
        parts.append(text)
    if len(parts) > 65536:
        write("".join(parts))
        parts.clear()


TABLES_SHOWN = 20  # a file of thousands of traces shows the first tables, then a count


def _print_summary(s: dict) -> None:
    from rich.table import Table

    from .inspect import describe

    out.print(Text(f"{s['file']}  ({s['format']}, {len(s['traces'])} trace(s))", style="bold"))
    for t in s["traces"][:TABLES_SHOWN]:
        table = Table(title=Text(f"trace {t['name']}: {t['steps']} steps"), title_justify="left")
        nonfinite = any(d["nonfinite"] for d in t["datasets"].values())  # a column only where there are some
        for col in ("dataset", "shape", "dtype", "min", "max") + (("non-finite",) if nonfinite else ()):
            table.add_column(col, justify="left" if col in ("dataset", "shape", "dtype") else "right")
        for key, d in t["datasets"].items():
            bad = f"{d['nonfinite']:,} (first at step {d['first_nonfinite_step']})" if d["nonfinite"] else ""
            table.add_row(key, " x ".join(map(str, d["shape"])), d["dtype"], _num(d["min"]), _num(d["max"]),
                          *((bad,) if nonfinite else ()))
        out.print(table)
        if t["metadata"]:
            out.print(Text("  metadata: " + ", ".join(f"{k}={v}" for k, v in t["metadata"].items())))
        for line in describe(t):  # the layouts it can fill; the DNC datasets it records
            out.print(Text("  " + line))
        if t.get("copy_diagnostics"):
            out.print(Text("  " + _copy_line(t["copy_diagnostics"])))
        if t.get("addressing"):
            from .analysis import describe_addressing

            for line in describe_addressing(t["addressing"]):
                out.print(Text("  " + line))
        out.print()
    if len(s["traces"]) > TABLES_SHOWN:
        out.print(Text(f"... and {len(s['traces']) - TABLES_SHOWN:,} more traces, each with its table in "
                       "`attnviz inspect --json`; problems in any of them are listed below"))


def _num(x) -> str:
    return "" if x is None else f"{x:.4g}"


def _copy_line(cd: dict) -> str:
    from .analysis import describe_copy

    return describe_copy(cd)


# -------------------------------------------------------------------- validate


@app.command(cls=_Command)
@cli_errors
def validate(
    files: Files,
    weightings: Annotated[bool, typer.Option(
        "--weightings", help="Also check that weightings lie in [0, 1] and sum to 1 over locations.")] = False,
    tol: Annotated[float, typer.Option(help="Tolerance for --weightings and for the ranges of the addressing "
                                            "stages.")] = 1e-3,
    as_json: Annotated[bool, typer.Option("--json", help='Print a JSON list of {"file", "problems"}, one per '
                                                        'file, instead of lines.')] = False,
    max_bytes: MaxBytes = None,
    allow_external: AllowExternal = False,
):
    """Check trace files (and folders of them) against the trace format; exit 1 with one line per problem.

    Recorded addressing stages are checked too: their ranges, and that they recombine into the weightings.

    Python: [bold]attnviz.validate_file(path)[/bold] returns the problem lines.
    """
    from .io import trace_entries, validate_file

    if not (math.isfinite(tol) and tol >= 0):
        raise typer.BadParameter(f"--tol {tol} must be a finite number, 0 or more")
    limit = parse_max_bytes(max_bytes)
    bad, report = 0, []
    for path, problem in trace_entries(files, allow_external):
        problems = ([str(problem)] if problem
                    else validate_file(path, tol if weightings else None, limit, allow_external, stage_tol=tol))
        report.append({"file": str(path), "problems": problems})
        for line in problems:
            error_line(line)
        if problems:
            bad += 1
        elif not as_json:
            out.print(Text(f"ok: {path}"))
    if as_json:
        _print_json(report)
    if bad:
        raise typer.Exit(1)


# --------------------------------------------------------------------- convert


@app.command(cls=_Command)
@cli_errors
def convert(
    src: Annotated[Path, typer.Argument(metavar="SRC", help="Trace file to read.", show_default=False)],
    dst: Annotated[Path, typer.Argument(metavar="DST", help="File to write; .h5/.hdf5 or .npz picks the format.",
                                        show_default=False)],
    max_bytes: MaxBytes = None,
    allow_external: AllowExternal = False,
):
    """Convert a trace file between HDF5 and NPZ, losslessly (arrays, dtypes, metadata, names).

    Python: [bold]attnviz.convert(src, dst)[/bold]
    """
    from .io import convert as convert_file

    convert_file(src, dst, parse_max_bytes(max_bytes), allow_external)
    out.print(Text(f"wrote {dst}"))


# ------------------------------------------------------------------------ plot


def _window(text: str | None, what: str):
    if text is None:
        return None
    m = re.fullmatch(r"\s*(-?\d*)\s*:\s*(-?\d*)\s*", text)
    if not m:
        extra = ", or auto, all" if what == "--locations" else ""
        raise typer.BadParameter(f"{what} window {text!r} is not START:STOP (e.g. 0:500, 100:, :50{extra})")
    return tuple(int(v) if v else None for v in m.groups())


def _pairs(items: list[str], what: str) -> dict[str, str]:
    out = {}
    for item in items:
        panel, sep, value = item.partition("=")
        if not sep or not panel or not value:
            raise typer.BadParameter(f"{what} {item!r} is not PANEL=VALUE")
        out[panel.strip()] = value.strip()
    return out


def _limits(items: list[str]) -> dict:
    out = {}
    for panel, value in _pairs(items, "--limits").items():
        out[panel] = _float_pair(value)
    return out


def _float_pair(value: str):
    lo, sep, hi = value.partition(":")
    try:
        if not sep:
            raise ValueError
        return (float(lo) if lo.strip() else None, float(hi) if hi.strip() else None)
    except ValueError:
        raise typer.BadParameter(f"limits {value!r} are not LOW:HIGH (e.g. 0:1, :0.5)") from None


def _xy(text: str | None, what: str, cast=float):
    if text is None:
        return None
    a, sep, b = text.lower().partition("x")
    try:
        if not sep:
            raise ValueError
        return (cast(a), cast(b))
    except ValueError:
        raise typer.BadParameter(f"{what} {text!r} is not AxB (e.g. 2x2, 8x6)") from None


@app.command(cls=_Command)
@cli_errors
def plot(
    files: Files,
    output: Annotated[Path | None, typer.Option("-o", "--output", metavar="FILE", help="Output file; its suffix "
                                                "picks the format \\[default: beside the trace, as NAME.png].",
                                                show_default=False)] = None,
    out_dir: Annotated[Path | None, typer.Option("--out-dir", metavar="DIR", help="Write every figure into this "
                                                 "folder, with a gallery: index.html.", show_default=False)] = None,
    formats: Annotated[list[Format] | None, typer.Option("--format", "-f", help="Format; repeat for several "
                                                         "(html: the interactive view).", show_default=False)] = None,
    layout: Annotated[Layout, typer.Option(help="grid: Inputs, Outputs / Write, Read Weightings (2x2). paper: "
                                                "adds Adds and Reads as a middle row (3x2); for an ngrams or "
                                                "priority-sort trace, the paper's figure of that task (optimal "
                                                "predictions; hypothesised locations). addressing: one head's "
                                                "addressing stages, content to final weighting, with its gate, key "
                                                "strength, sharpening and shifts (--head). dnc: a DNC's memory "
                                                "(weightings, write, allocation and free gates, read modes, "
                                                "usage).")] = Layout.grid,
    panels: Annotated[str | None, typer.Option(metavar="LIST", help="Comma-separated panels instead of a layout: "
                                                    "inputs, outputs, targets, baseline_outputs, write_weightings, "
                                                    "read_weightings, adds, erases, reads, usage, "
                                                    "allocation_weightings, precedence_weightings.",
                                                    show_default=False)] = None,
    grid: Annotated[str | None, typer.Option(metavar="RxC", help="Rows x columns, e.g. 2x2; as many cells as "
                                             "panels, or more \\[default: the layout's].", show_default=False)] = None,
    cmap: Annotated[str | None, typer.Option(metavar="NAME", help="Colormap for every panel: any matplotlib name "
                                                  "(attnviz, viridis, turbo, gray, ...) \\[default: attnviz, blue "
                                                  "to red; RdBu_r for the signed Adds and Reads].",
                                             show_default=False)] = None,
    panel_cmap: Annotated[list[str] | None, typer.Option("--panel-cmap", metavar="PANEL=NAME", help="A colormap "
                                                         "for one panel; repeatable.", show_default=False)] = None,
    limits: Annotated[list[str] | None, typer.Option("--limits", metavar="PANEL=LO:HI", help="Colour limits of one "
                                                     "panel; repeatable. "
                                                     "Default: 0:1 for weightings, outputs, targets and erases; "
                                                     "symmetric about 0 for adds and reads; inputs their range.",
                                                     show_default=False)] = None,
    colorbar: Annotated[bool, typer.Option("--colorbar", help="Draw a colour bar beside every panel.")] = False,
    head: Annotated[str | None, typer.Option(metavar="N|KIND:N", help="Draw only this head (from 0) of the "
                                                  "weightings, adds, erases and reads \\[default: one panel per head]. "
                                                  "--layout addressing: read:N or write:N \\[default: read:0; N alone: "
                                                  "read:N].", show_default=False)] = None,
    trace: Annotated[str | None, typer.Option(metavar="NAME", help="Draw only this trace of each file "
                                                   "\\[default: all, one figure each].", show_default=False)] = None,
    title: Annotated[bool, typer.Option("--title/--no-title", help="Title from the trace's metadata (task, "
                                                                    "step, length) when it has any.")] = True,
    title_text: Annotated[str | None, typer.Option("--title-text", metavar="TEXT", help="A title of your own.",
                                                   show_default=False)] = None,
    marker: Annotated[list[int] | None, typer.Option("--marker", metavar="STEP", help="Mark this time step with a "
                                                     "dashed line; repeatable.", show_default=False)] = None,
    phase_marker: Annotated[bool, typer.Option("--phase-marker/--no-phase-marker", help="A dashed line where the "
                                               "output phase starts (from output_mask, or a copy's "
                                               "sequence_length).")] = True,
    figsize: Annotated[str | None, typer.Option(metavar="WxH", help="Figure size in inches \\[default: grows with "
                                                     "the grid].", show_default=False)] = None,
    dpi: Annotated[float, typer.Option(help="Pixels per inch.")] = 100,
    fontsize: Annotated[float, typer.Option(help="Font size in points.")] = 10,
    transparent: Annotated[bool, typer.Option("--transparent", help="Transparent background.")] = False,
    time: Annotated[str | None, typer.Option("--time", metavar="START:STOP", help="Draw only these steps (and read "
                                             "only those).", show_default=False)] = None,
    locations: Annotated[str, typer.Option("--locations", help="Weighting rows to draw: auto (the locations "
                                           "the heads use, with a margin), all, or START:STOP (a STOP below "
                                           "START wraps: 100:10 is 100..N-1, then 0..9).")] = "auto",
    order: Annotated[Order, typer.Option(help="Location rows: index (by number) or written (by the step of "
                                              "their first strong write, a weight of 0.5 or more; the rest after "
                                              "them, by number; true numbers on the axis).")] = Order.index,
    reduce: Annotated[Reduction, typer.Option(help="When steps or locations outnumber pixels: max (a lone spike "
                                                   "stays visible) or mean.")] = Reduction.max,
    jobs: Annotated[int | None, typer.Option("--jobs", "-j", metavar="N", help="Processes drawing a batch "
                                             "\\[default: one per core]; 1 draws in this process alone.",
                                             show_default=False)] = None,
    shard: Annotated[str, typer.Option(metavar="K/N", help="Draw only the K-th of N disjoint slices of the traces "
                                            "(for CI matrices).")] = "1/1",
    max_bytes: MaxBytes = None,
    allow_external: AllowExternal = False,
):
    """Draw traces as the NTM paper's grid of Time x Location heatmaps (PNG, SVG, PDF or HTML).

    Frames (axes, labels) are cached in ~/.cache/attnviz; ATTNVIZ_CACHE_DIR=DIR moves it, =off turns it off.

    Python: [bold]attnviz.plot_files(files, out_dir=..., options=PlotOptions(...))[/bold]
    """
    from .batch import plot_files
    from .plot.run import is_run_dir, plot_run

    m = re.fullmatch(r"(\d+)/(\d+)", shard.strip())
    if not m:
        raise typer.BadParameter(f"--shard {shard!r} is not K/N (e.g. 1/4)")
    opts = _plot_options(layout, panels, grid, cmap, panel_cmap, limits, colorbar, head, title, title_text, marker,
                         phase_marker, figsize, dpi, fontsize, transparent, time, locations, reduce, order)
    fmts = [f.value for f in formats or ()]
    K, N = int(m.group(1)), int(m.group(2))
    if len(files) == 1 and is_run_dir(files[0]):
        _run_dir_options(files[0], output, fmts, trace, jobs, (K, N))
        plot_run(files[0], out_dir, opts, max_bytes=parse_max_bytes(max_bytes), html="html" in fmts,
                 allow_external=allow_external, on_write=lambda path: out.print(Text(f"wrote {path}")))
        return
    with _batch_progress(len(files) > 1 or files[0].is_dir()) as on_progress:
        result = plot_files(files, output, out_dir, opts, fmts or None, trace, jobs, (K, N), parse_max_bytes(max_bytes),
                            on_progress=on_progress, allow_external=allow_external)
    for line in dict.fromkeys(result.warnings):
        err.print(Text(f"attnviz: warning: {line}"))
    written = result.written + ([result.index] if result.index else [])  # the gallery is written like the rest
    for path in written if len(written) <= 10 else []:
        out.print(Text(f"wrote {path}"))
    if len(written) > 10:
        out.print(Text(f"wrote {len(written)} files" + (f", the gallery {result.index}" if result.index else "")))
    if result.failures:
        for line in result.failures:
            error_line(line)
        if len(result.failures) > 1 or result.written:  # (a gallery alone is no figure drawn)
            error_line(f"{len(result.failures)} trace(s) or file(s) failed, {len(written)} file(s) written")
        raise typer.Exit(EXIT_USAGE if result.option_failed else 1)


def _run_dir_options(run_dir: Path, output, fmts, trace, jobs, shard) -> None:
    """Refuse the options of plot that a run folder cannot honour: it is drawn whole, in this process,
    into a folder, as PNG and GIF (and its page)."""
    unused = [("-o/--output", output is not None), ("--trace", trace is not None), ("--jobs", jobs is not None),
              ("--shard", shard != (1, 1))]
    unused += [(f"--format {fmt}", True) for fmt in dict.fromkeys(fmts) if fmt not in ("png", "html")]
    traces = run_dir / "traces.h5"
    hint = f"; to draw its snapshots as trace files, give {traces}" if traces.is_file() else ""
    for option, given in unused:
        if given:
            raise typer.BadParameter(f"{option} does not apply to a run folder ({run_dir}), which is drawn whole "
                                     f"into RUN_DIR/figures or --out-dir as PNG and GIF (with -f html, its page too)"
                                     + hint)


def _plot_options(layout, panels, grid, cmap, panel_cmap, limits, colorbar, head, title, title_text, marker,
                  phase_marker, figsize, dpi, fontsize, transparent, time, locations, reduce, order):
    """PlotOptions from the figure options that plot and animate share."""
    from .plot.options import PlotOptions

    return PlotOptions(
        layout=layout.value, panels=tuple(p.strip() for p in panels.split(",") if p.strip()) if panels else None,
        grid=_xy(grid, "--grid", int), cmap=cmap, panel_cmaps=_pairs(panel_cmap or [], "--panel-cmap"),
        limits=_limits(limits or []), colorbar=colorbar, head=_head(head), title=title_text or title,
        markers=tuple(marker or ()), phase_marker=phase_marker, figsize=_xy(figsize, "--figsize"), dpi=dpi,
        fontsize=fontsize, transparent=transparent, time=_window(time, "--time"),
        locations=locations if locations in ("auto", "all") else _window(locations, "--locations"),
        reduce=reduce.value, order=order.value).validated()


def _head(text: str | None) -> int | str | None:
    """--head as PlotOptions takes it: a number, or KIND:N as given (PlotOptions checks it)."""
    if text is None:
        return None
    text = text.strip()
    return int(text) if re.fullmatch(r"-?\d+", text) else text


FIGURE_OPTIONS = ("layout", "panels", "grid", "cmap", "panel_cmap", "limits", "colorbar", "head", "title", "title_text",
                  "marker", "phase_marker", "figsize", "dpi", "fontsize", "transparent", "time", "locations", "reduce",
                  "order")


def compare(**kw):
    """Compare training runs (run or sweep folders), or two traces side by side with their difference.

    Run folders, or folders of them (a sweep): a table per run (converged? how fast? the best?) and
    per group of runs with one configuration; --json or --csv; -o draws every run's curve and last
    snapshot (PNG, SVG, PDF, or an HTML report).

    Two traces: both grids on one shared crop and colour scale, and below, the difference b - a of
    each weighting panel, blue where a is higher, red where b is (PNG, SVG, PDF or HTML). Give two
    trace files; or one file and --trace twice (two snapshots of a run's traces.h5); or two files and
    --trace once (that trace in both) or twice (one each, in order). The difference needs the same
    steps and memory size in both.

    Python: [bold]attnviz.compare_runs(["runs/copy"])[/bold], [bold]attnviz.compare_traces("a.h5", "b.h5",
    "a-vs-b.png")[/bold]
    """
    files = kw["files"]
    if all(f.is_dir() for f in files):
        _compare_runs_options(kw)
        _compare_runs(files, kw["output"], kw["as_json"], kw["as_csv"])
        return
    if kw["as_json"] or kw["as_csv"]:
        raise typer.BadParameter("--json and --csv are for run folders; two traces are compared in a figure")
    opts = _plot_options(*(kw[k] for k in FIGURE_OPTIONS))
    _compare_traces(kw["files"], kw["output"], kw["trace"] or [], opts, [f.value for f in kw["formats"] or ()],
                    kw["diff_cmap"], kw["diff_limit"], parse_max_bytes(kw["max_bytes"]), kw["allow_external"])


def _compare_traces(files: list[Path], output: Path | None, traces: list[str], opts, fmts: list[str], diff_cmap: str,
                    diff_limit: float | None, max_bytes: int | None, allow_external: bool) -> None:
    """compare of trace files: the two traces that the files and --trace name, in one figure."""
    from .plot.export import check_formats, check_output_name
    from .plot.pair import compare_traces, default_output

    if len(files) == 1 and len(traces) == 2:
        a, b = (files[0], traces[0]), (files[0], traces[1])
    elif len(files) == 2 and len(traces) <= 2:
        names = traces * 2 if len(traces) == 1 else traces or [None, None]
        a, b = (files[0], names[0]), (files[1], names[1])
    elif len(files) == 1:
        raise typer.BadParameter(f"one file needs --trace twice, naming the two traces of {files[0]} to compare "
                                 "(e.g. --trace step_0000100 --trace step_0005000)")
    else:
        raise typer.BadParameter(f"compare takes two trace files, or one with --trace twice; got {len(files)} "
                                 f"file(s) and {len(traces)} --trace")
    check_formats(fmts)
    if output is not None:
        check_output_name(output)
    result = compare_traces(a, b, options=opts, max_bytes=max_bytes, allow_external=allow_external,
                            diff_cmap=diff_cmap, diff_limit=diff_limit)
    for line in result.warnings:
        err.print(Text(f"attnviz: warning: {line}"))
    for path in result.save(output or default_output(a, b), fmts or None):
        out.print(Text(f"wrote {path}"))


def _compare_signature() -> pyinspect.Signature:
    """The traces, the output and the difference's colormap; plot's formats and figure options."""
    import typing

    hints = typing.get_type_hints(plot.__wrapped__, include_extras=True)  # the options, not their text
    shared = {k: p.replace(annotation=hints[k]) for k, p in pyinspect.signature(plot.__wrapped__).parameters.items()}
    keyword = pyinspect.Parameter.KEYWORD_ONLY
    params = [
        pyinspect.Parameter("files", keyword, annotation=Annotated[list[Path], typer.Argument(
            help="Run folders or sweep folders; or two trace files (.h5, .hdf5, .npz), or one with --trace twice.",
            metavar="FILES...",
            show_default=False)]),
        pyinspect.Parameter("output", keyword, default=None, annotation=Annotated[Path | None, typer.Option(
            "-o", "--output", metavar="FILE", help="Output file; its suffix picks the format \\[default: "
                                                   "A-vs-B.png beside the first file].", show_default=False)]),
        shared["formats"].replace(kind=keyword),
        pyinspect.Parameter("trace", keyword, default=None, annotation=Annotated[list[str] | None, typer.Option(
            "--trace", metavar="NAME", help="A trace of a file, by name: twice with one file, once with two files "
                                            "(the same trace in both), or twice with two (one each, in order).",
            show_default=False)]),
        pyinspect.Parameter("as_json", keyword, default=False, annotation=Annotated[bool, typer.Option(
            "--json", help="Run folders: print the runs and groups as JSON.")]),
        pyinspect.Parameter("as_csv", keyword, default=False, annotation=Annotated[bool, typer.Option(
            "--csv", help="Run folders: print the runs as CSV.")]),
        pyinspect.Parameter("diff_cmap", keyword, default="RdBu_r", annotation=Annotated[str, typer.Option(
            "--diff-cmap", metavar="NAME", help="Colormap of the difference b - a, centred on 0: a diverging one.")]),
        pyinspect.Parameter("diff_limit", keyword, default=None, annotation=Annotated[float | None, typer.Option(
            "--diff-limit", metavar="X", help="The difference's colour scale runs from -X to X \\[default: 1, the "
                                              "most two weightings can differ].", show_default=False)]),
    ]
    params += [shared[k].replace(kind=keyword) for k in (*FIGURE_OPTIONS, "max_bytes", "allow_external")]
    return pyinspect.Signature(params)


compare.__signature__ = _compare_signature()
compare.__annotations__ = {p.name: p.annotation for p in compare.__signature__.parameters.values()}
app.command(cls=_Command)(cli_errors(compare))


def animate(**kw):
    """Draw many traces (a run's snapshots, or any file's traces) as the frames of one GIF or MP4.

    Frames follow the traces' step metadata, then their names, and share one geometry, crop and
    colour scale. MP4 needs the video extra: pip install 'attnviz\\[video]'.

    Python: [bold]attnviz.animate(files, "evolution.gif", fps=4)[/bold]
    """
    from .plot.animate import animate as animate_files

    opts = _plot_options(*(kw[k] for k in FIGURE_OPTIONS))
    path = animate_files(kw["files"], kw["output"], opts, fps=kw["fps"], max_bytes=parse_max_bytes(kw["max_bytes"]),
                         allow_external=kw["allow_external"])
    out.print(Text(f"wrote {path}"))


def _animate_signature() -> pyinspect.Signature:
    """plot's figure options, plus the files, the output and the frame rate."""
    import typing

    hints = typing.get_type_hints(plot.__wrapped__, include_extras=True)  # the options, not their text
    shared = {k: p.replace(annotation=hints[k]) for k, p in pyinspect.signature(plot.__wrapped__).parameters.items()}
    keyword = pyinspect.Parameter.KEYWORD_ONLY
    params = [shared["files"].replace(kind=keyword),
              pyinspect.Parameter("output", keyword, annotation=Annotated[Path, typer.Option(
                  "-o", "--output", metavar="FILE", help="The animation: .gif, or .mp4 (with the video extra).",
                  show_default=False)]),
              pyinspect.Parameter("fps", keyword, default=4.0, annotation=Annotated[float, typer.Option(
                  help="Frames per second.")])]
    params += [shared[k].replace(kind=keyword) for k in (*FIGURE_OPTIONS, "max_bytes", "allow_external")]
    return pyinspect.Signature(params)


animate.__signature__ = _animate_signature()
animate.__annotations__ = {p.name: p.annotation for p in animate.__signature__.parameters.values()}
app.command(cls=_Command)(cli_errors(animate))


def _settings(items: list[str]) -> dict:
    """--set KEY=VALUE pairs, checked against the configurations' fields; VALUE read as JSON if it is."""
    import json

    from .trainer.ntm.config import NTMConfig
    from .trainer.train import TrainConfig

    own = {"model", "task", "seed", "max_steps", "max_seconds", "processes"}  # these have options of their own
    fields = {f.name for f in dataclasses.fields(TrainConfig)} - own
    fields |= {f"model.{f.name}" for f in dataclasses.fields(NTMConfig)} - {"model.input_size", "model.output_size"}
    out = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or key not in fields:
            raise typer.BadParameter(f"--set {item!r}: not KEY=VALUE with KEY one of {', '.join(sorted(fields))}")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out


@contextlib.contextmanager
def _training_progress(quiet: bool):
    """The callback that shows a run as it goes: a live line on a terminal; elsewhere (a CI log) one
    plain line per held-out evaluation; nothing with --quiet. Yields the callback. The run's "start"
    event says its task and the step and time limits this call of run() was given."""
    state = {"loss": math.nan, "losses": [], "wrong": math.nan, "best": math.inf, "bits": math.nan, "optimal": None,
             "judge": "wrong_bits",
             "start": None,  # the first (s, seqs)
             "level": "", "task": "", "max_steps": 0, "max_seconds": 0.0}

    def line(e) -> str:
        t0, seqs0 = state["start"]
        # since this process started: a resumed run's rate does not count the checkpoint's earlier training
        rate = (e["sequences"] - seqs0) / (e["seconds"] - t0) if e["seconds"] > t0 else 0.0
        left, max_steps, max_seconds = "", state["max_steps"], state["max_seconds"]
        if max_steps and rate > 0:
            left = f"  {_duration((max_steps - e['step']) * (e['sequences'] / max(e['step'], 1)) / rate)} left"
        elif max_seconds:
            left = f"  {_duration(max(0.0, max_seconds - e['seconds']))} left"
        if state["judge"] == "excess_bits" and state["optimal"] is not None:
            held = (f"held-out {state['bits']:.1f} bits/seq, optimal {state['optimal']:.1f} "
                    f"(best {state['best']:+.2f})")
        elif state["judge"] == "bits":
            held = (f"held-out {state['bits']:.1f} bits/seq, wrong bits/seq {_bits(state['wrong'])} "
                    f"(best {state['best']:.1f} bits/seq)")
        else:
            held = f"held-out wrong bits/seq {_bits(state['wrong'])} (best {_bits(state['best'])})"
        return (f"step {e['step']:,}  {e['sequences']:,} seqs  {rate:,.0f} seqs/s  train {state['loss']:.1f} bits/seq"
                f"  {held}"
                f"{state['level']}  {e['seconds']:.0f} s{left}")

    def remember(e) -> bool:
        """Keep what the line shows; True at a held-out evaluation."""
        if e["kind"] == "start":
            # a resumed run's best so far, not this process's
            state.update(task=e["task"], max_steps=e["max_steps"], max_seconds=e["max_seconds"],
                         best=e.get("best", math.inf))
            return False
        if state["start"] is None:
            state["start"] = (e["seconds"], e["sequences"])
        if e["kind"] == "step":  # the mean over the batches since the last evaluation, not the last one
            state["losses"].append(e["loss"])
            state["loss"] = sum(state["losses"]) / len(state["losses"])
        elif e["kind"] == "eval":
            state.update(wrong=e["wrong_bits"], bits=e["bits"], optimal=e.get("optimal_bits"),
                         judge=e.get("judge", "wrong_bits"))
            state["best"] = min(state["best"], e.get("score", e["wrong_bits"]))
            state["losses"] = []
            if e.get("max_level"):  # a curriculum: how far it has come, and what it waits for
                waits = max((v, k) for k, v in e["by_level"].items() if k <= e["level"])
                state["level"] = (f"  curriculum level {e['level']} of {e['max_level']}"
                                  + (f" (level {waits[1]}: {_bits(waits[0])} wrong bits/seq)"
                                     if e["level"] < e["max_level"] else ""))
            return True
        return False

    def rollback(e, say):
        if e["kind"] == "eval" and e["rolled_back"]:
            what = (f"held-out wrong bits jumped to {e['wrong_bits']:.2f} per sequence"
                    if e.get("judge", "wrong_bits") == "wrong_bits"
                    else f"held-out cross-entropy jumped to {e['bits']:.2f} bits per sequence")
            say(f"step {e['step']:,}: {what}; "
                "rolled back to the best state, at a lower rate")

    if quiet:
        yield lambda e: None
    elif not err.is_terminal:
        def plain(e):
            if e["kind"] in ("start", "step", "eval") and remember(e):
                print(line(e), file=sys.stderr, flush=True)
            rollback(e, lambda text: print(text, file=sys.stderr, flush=True))
        yield plain
    else:
        from rich.progress import Progress, TextColumn
        from rich.table import Column

        # One column that folds: at any width the whole line shows, on as many rows as it needs.
        with Progress(TextColumn("{task.fields[status]}", markup=False, table_column=Column(overflow="fold")),
                      console=err, transient=False, expand=True) as progress:
            bar = progress.add_task("train", status="train: starting")

            def live(e):
                if e["kind"] not in ("start", "step", "eval"):
                    return
                if remember(e) or (e["kind"] == "step" and e["step"] % 10 == 0):
                    progress.update(bar, status=f"train {state['task']}: {line(e)}")
                rollback(e, progress.console.print)
            yield live


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}" if seconds < 3600 else f"{seconds // 3600}h{seconds % 3600 // 60:02d}"


def _bits(value: float) -> str:
    """Held-out wrong bits for people: '-' before the first evaluation (nan or inf)."""
    return f"{value:.3f}" if math.isfinite(value) else "-"


@contextlib.contextmanager
def _batch_progress(show: bool):
    """A progress bar for a batch (yields its update callback); nothing for a single file,
    which then need not import rich.progress at all."""
    if not show:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("drawing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err, transient=True) as progress:
        task = progress.add_task("plot", total=None)
        yield lambda done, total: progress.update(task, completed=done, total=total)


# ----------------------------------------------------------------------- train


@app.command(cls=_Command)
@cli_errors
def train(
    ctx: typer.Context,
    task: Annotated[TaskName, typer.Option(metavar="TASK", help=f"The task to learn: {_listed(TaskName)}.")
                    ] = TaskName.copy,
    run_dir: Annotated[Path | None, typer.Option("--run-dir", metavar="DIR", help="Folder for config, metrics, "
                                                 "checkpoints and traces \\[default: runs/TASK-seedSEED].",
                                                 show_default=False)] = None,
    architecture: Annotated[ModelName, typer.Option("--model", metavar="MODEL", help="The memory network: ntm (the "
                                                    "Neural Turing Machine) or dnc (the Differentiable Neural "
                                                    "Computer).")] = ModelName.ntm,
    seed: Annotated[int, typer.Option(help="Seed for weights and data: the same seed, the same run.")] = 0,
    resume: Annotated[Path | None, typer.Option(metavar="DIR", help="Continue the run in this folder from its "
                                                                    "checkpoint.", show_default=False)] = None,
    max_steps: Annotated[int, typer.Option(help="Stop after this many steps (0: no limit).")] = 0,
    max_seconds: Annotated[float, typer.Option(help="Stop after this much training time (0: no limit).")] = 0,
    trace_every: Annotated[int, typer.Option(metavar="N", help="Record a trace of the probe sequence every N "
                                                               "steps, and more often early on: every N/10 steps "
                                                               "up to step 2N, every N/5 up to 10N (0: never).")
                           ] = 500,
    checkpoint_every: Annotated[int, typer.Option(help="Write checkpoint.npz every N steps (and at least every "
                                                       "60 s of training).")] = 500,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress while training; the last line only.")
                     ] = False,
    config: Annotated[Path | None, typer.Option(
        "--config", metavar="FILE", help="A JSON file of training options, such as a run folder's config.json; "
                                         "options given here win over it.", show_default=False)] = None,
    settings: Annotated[list[str] | None, typer.Option(
        "--set", metavar="KEY=VALUE", help="Any field of the training or model configuration, e.g. lr=0.002 or "
                                           "model.read_first=false (VALUE as JSON, or plain text); repeatable.",
        show_default=False)] = None,
    batch_size: Annotated[int, typer.Option(help="Sequences per step.")] = 32,
    optimizer: Annotated[Optimizer, typer.Option(metavar="NAME", help="adam, or rmsprop (the paper's; use "
                                                                      "--lr 1e-4).")] = Optimizer.adam,
    lr: Annotated[float | None, typer.Option(help="Learning rate \\[default: the task's: 1e-3 for copy, 3e-3 "
                                                  "for the others].",
                                             show_default=False)] = None,
    controller: Annotated[Controller, typer.Option(metavar="KIND", help="The controller network: "
                                                                        f"{_listed(Controller)}.")] = Controller.lstm,
    controller_size: Annotated[int, typer.Option(help="Controller units \\[default: the model's: 100 for the NTM "
                                                      "(ngrams: 64), 64 for the DNC].", show_default=False)] = 100,
    memory_size: Annotated[int, typer.Option(help="N, memory locations \\[default: the model's: 128 for the NTM "
                                                  "(ngrams: 208, multi-copy: 10), 32 for the DNC (multi-copy: 10)].",
                                             show_default=False)] = 128,
    word_size: Annotated[int, typer.Option(help="M, memory word width \\[default: the model's: 20 for the NTM "
                                                "(ngrams: 10), 16 for the DNC].", show_default=False)] = 20,
    read_heads: Annotated[int, typer.Option(help="Read heads.")] = 1,
    write_heads: Annotated[int, typer.Option(help="Write heads.")] = 1,
    processes: Annotated[int, typer.Option(help="Worker processes for the gradient (0: one per core, up to 2). "
                                                "Changes speed, never the numbers.")] = 0,
    seeds: Annotated[str | None, typer.Option(metavar="SEEDS", help="A sweep: one run per seed (0-9, or 0,2,5-7) "
                                              "in DIR/seed0, ...; run again, it continues the unfinished "
                                              "seeds and skips those that converged or diverged.",
                                              show_default=False)] = None,
    shard: Annotated[str, typer.Option(metavar="K/N", help="With --seeds: train only the K-th of N disjoint "
                                            "slices of the seeds (one per machine or CI job).")] = "1/1",
    parallel: Annotated[int | None, typer.Option(metavar="N", help="With --seeds: seeds trained at once, each "
                                                 "with its share of the cores \\[default: 1, one after "
                                                 "another].", show_default=False)] = None,
):
    """Train the reference Neural Turing Machine or Differentiable Neural Computer (numpy) and record traces of
    what it does.

    Stops when held-out wrong bits per sequence stay below 0.1 for 10 evaluations in a row (ngrams:
    its cross-entropy within 1 bit per sequence of the optimal predictor's; priority-sort: below 20 bits
    per sequence), or at --max-steps / --max-seconds. Ctrl-C (or SIGTERM) stops after a checkpoint, with exit
    code 130 (143). A loss or gradient that is not finite stops the run before that step's update,
    with exit code 4: the last checkpoint is kept, and the trace of the sequence that diverged is
    written to DIR/diverged.h5 (attnviz plot draws it).

    Python: [bold]attnviz.train(task="copy", run_dir="runs/copy", seed=0)[/bold]
    """
    from .trainer.models import foreign_option
    from .training import train as train_run

    given = {p for p in ctx.params if ctx.get_parameter_source(p).name == "COMMANDLINE"}
    if seeds is None and given & {"shard", "parallel"}:
        raise typer.BadParameter(f"--{sorted(given & {'shard', 'parallel'})[0]} is for a sweep: give --seeds too")
    if seeds is not None and given & {"seed", "resume"}:
        raise typer.BadParameter(f"--seeds trains one run per seed: --{sorted(given & {'seed', 'resume'})[0]} "
                                 "has no place beside it (run the same command again to continue a sweep)")
    if resume and given & {"task", "architecture", "seed", "run_dir", "config"}:
        raise typer.BadParameter("--resume continues a run as it was: --task, --model, --seed, --run-dir and "
                                 "--config come from its folder")
    task, optimizer, controller, architecture = task.value, optimizer.value, controller.value, architecture.value
    model = {"controller": controller, "controller_size": controller_size, "memory_size": memory_size,
             "word_size": word_size, "read_heads": read_heads, "write_heads": write_heads}
    kw = {"task": task, "architecture": architecture, "seed": seed, "max_steps": max_steps,
          "max_seconds": max_seconds, "processes": processes,
          "trace_every": trace_every, "checkpoint_every": checkpoint_every, "batch_size": batch_size,
          "optimizer": optimizer, "lr": lr, "model": model}
    # Only what was given: the library's defaults (some of them the task's), the file or the resumed
    # run's folder decide the rest. A resumed run's limits are the ones given to --resume, never the run's.
    limits = {"max_steps", "max_seconds", "processes"} if resume else set()
    kw = {k: v for k, v in kw.items() if k in given | limits}
    kw["model"] = {k: v for k, v in model.items() if k in given}
    for key, value in _settings(settings or []).items():
        if key.startswith("model."):
            kw.setdefault("model", {})[key[6:]] = value
        else:
            kw[key] = value
    if not kw.get("model"):
        kw.pop("model", None)
    problem = foreign_option(kw.get("architecture", "ntm"), kw.get("model", {})) if not (resume or config) else None
    if problem:
        raise typer.BadParameter(problem)
    if seeds is not None:
        _sweep(seeds, shard, parallel, run_dir, quiet, config, kw)
        return
    with _training_progress(quiet) as on_event:
        result = train_run(run_dir=run_dir, resume=resume, on_event=on_event, config=config, **kw)
    if result["reason"] == "diverged":
        error_line(f"{result['run_dir']}: {_diverged_line(result['diverged'])}")
        raise typer.Exit(EXIT_DIVERGED)
    out.print(Text(f"{result['reason']}: step {result['step']}, {result['sequences']:,} sequences, "
                   f"{result['seconds']:.1f} s, {_best(result)}; run folder {result['run_dir']}"))
    if result["reason"] == "interrupted":  # scripts can tell a stopped run from a finished one
        raise typer.Exit(143 if result["signal"] == "SIGTERM" else 130)


def _diverged_line(d: dict) -> str:
    """Where a run diverged, what was kept and where the trace is: one line."""
    kept = (f"the checkpoint of step {d['checkpoint_step']:,} is kept" if d["checkpoint_step"] is not None
            else "no checkpoint had been written")
    trace = f"the sequence's trace: {d['trace']}" if d["trace"] else "the sequence is too long to record"
    return f"{d['description']}; stopped before its update, {kept}; {trace}"


def _sweep(seeds: str, shard: str, parallel: int | None, run_dir: Path | None, quiet: bool, config, kw: dict) -> None:
    """train --seeds: one line per seed as it starts and ends, with the sweep's state."""
    from .sweep import PARALLEL, parse_seeds, parse_shard, seed_dir, sweep

    seed_list, slice_ = parse_seeds(seeds), parse_shard(shard)
    kw = dict(kw)
    task = kw.pop("task", None)
    folder = run_dir or Path(f"runs/{task or 'copy'}-seeds")

    def say(text: str) -> None:
        if not quiet:
            err.print(Text(text), soft_wrap=True)

    pending = []  # a seed's line waits for the sweep's state, which follows it

    def on_event(e):
        if e["kind"] == "sweep":
            say(f"{pending.pop()}  [sweep: {e['done']} done, {e['running']} running, {e['left']} left, "
                f"{_duration(e['seconds'])}]")
        elif e["what"] == "skip":
            pending.append(f"seed {e['seed']}: skipped, {e['why']}")
        elif e["what"] == "start":
            pending.append(f"seed {e['seed']}: {'resumed' if e['resume'] else 'started'} in "
                           f"{seed_dir(folder, e['seed'])}")
        else:
            pending.append(f"seed {e['seed']}: " + _seed_line(e))

    at_once = PARALLEL if parallel is None else parallel
    results = sweep(seed_list, folder, task, slice_, at_once, config=config, on_event=on_event, **kw)
    finished = [r for r in results if "error" not in r and r.get("reason") != "interrupted"]
    converged = sum(1 for r in results if r.get("reason") == "converged" or r.get("skipped") == "converged")
    diverged = sum(1 for r in results if "diverged" in (r.get("reason"), r.get("skipped")))
    out.print(Text(f"sweep {folder}: {len(finished)} of {len(results)} seeds done, {converged} converged"
                   + (f", {diverged} diverged" if diverged else "")
                   + f" (seeds {', '.join(str(r['seed']) for r in results) or 'none in this shard'})"))
    # the worst first: stopped by a signal, then a seed that failed, then one that diverged
    stopped = [r for r in results if r.get("reason") == "interrupted"]
    if stopped:
        raise typer.Exit(143 if any(r.get("signal") == "SIGTERM" for r in stopped) else 130)
    if any("error" in r for r in results):
        raise typer.Exit(1)
    if diverged:
        raise typer.Exit(EXIT_DIVERGED)


def _seed_line(r: dict) -> str:
    if "error" in r:
        return f"failed: {r['error']}"
    if r["reason"] == "diverged":
        return _diverged_line(r["diverged"])
    return f"{r['reason']} at step {r['step']:,}, {r['sequences']:,} sequences, {r['seconds']:.1f} s, {_best(r)}"


def _best(r: dict) -> str:
    """The best held-out score of a run's result, in the words of what it is judged by, and how many of its
    steps took their gradient in float64."""
    if r.get("judged_by") in ("excess_bits", "bits") and not math.isfinite(r["best"]):
        best = "no held-out evaluation yet"
    elif r.get("judged_by") == "excess_bits":
        best = f"best held-out cross-entropy {r['best']:+.2f} bits per sequence from the optimal predictor's"
    elif r.get("judged_by") == "bits":
        best = f"best held-out cross-entropy {r['best']:.2f} bits per sequence"
    else:
        best = f"best held-out wrong bits per sequence {_bits(r['best_wrong_bits'])}"
    wide = r.get("wide_steps")
    return best + (f" ({wide:,} step{'s' * (wide != 1)} with a gradient past float32's range, taken in float64)"
                   if wide else "")


@app.command(cls=_Command)
@cli_errors
def record(
    checkpoint: Annotated[Path, typer.Argument(metavar="CHECKPOINT", help="A checkpoint .npz, or a run folder "
                                                                          "(its best.npz).",
                                               show_default=False)],
    length: Annotated[int, typer.Option(help="Sequence length (try lengths beyond training: 30, 50, 120).")] = 20,
    output: Annotated[Path, typer.Option("-o", "--output", metavar="FILE", help="Trace file to write (.h5 or "
                                                                                ".npz).")] = Path(
        "trace.h5"),
    seed: Annotated[int, typer.Option(help="Seed of the random sequence.")] = 2014,
):
    """Run a trained model on a new sequence and record its trace.

    Python: [bold]attnviz.record(checkpoint, length, output)[/bold]
    """
    from .training import record as record_trace

    out.print(Text(f"wrote {record_trace(checkpoint, length, output, seed)}"))


def _compare_runs_options(kw: dict) -> None:
    """Refuse the options of a two-trace comparison that run folders do not take."""
    defaults = {p.name: p.default for p in compare.__signature__.parameters.values()}
    for name in ("trace", "formats", "diff_cmap", "diff_limit", *FIGURE_OPTIONS):
        if kw[name] != defaults[name] and not (kw[name] == [] and defaults[name] is None):
            flag = "--" + name.replace("_", "-")
            raise typer.BadParameter(f"{flag} is for two traces; run folders are compared by their metrics and "
                                     "last snapshots (-o FILE, --json, --csv)")


def _compare_runs(paths: list[Path], output: Path | None, as_json: bool, as_csv: bool) -> None:
    from .compare import as_json as json_of
    from .compare import compare_runs, rows_csv

    if as_json and as_csv:
        raise typer.BadParameter("--json and --csv: choose one")
    if output is not None:
        from .plot.export import check_output_name

        check_output_name(output)
    result = compare_runs(paths, output)
    if as_json or as_csv:  # the table lists them itself
        for r in result["runs"]:
            if r["problem"]:
                error_line(f"{r['run']}: {r['state']}: {r['problem']}")
    if as_json:
        _print_json(json_of(result))
    elif as_csv:
        sys.stdout.write(rows_csv(result["runs"], result["columns"]))
    else:
        _print_runs(result)
    for path in result.get("written", []):
        (err if as_json or as_csv else out).print(Text(f"wrote {path}"))
    if any(r["state"] == "damaged" for r in result["runs"]):
        raise typer.Exit(1)


def _print_runs(result: dict) -> None:
    """One table per group of runs, then each group's summary line."""
    from rich import box
    from rich.table import Table

    from .compare import JUDGED
    from .plot.compare import display_names

    def n(x):
        return "-" if x is None else f"{x:,.0f}" if isinstance(x, int) or abs(x) >= 100 else f"{x:.3g}"

    runs, groups = result["runs"], result["groups"]
    hi, lo = (f"{t:g}" for t in result["thresholds"])
    best = "best_" + JUDGED[result["judge"]][1]
    out.print(Text(f"{result['task']}: {result['label']}; sequences seen and training seconds until the first of 10 "
                   f"evaluations in a row below {hi} and below {lo}", style="bold"))
    names = dict(zip((r["run"] for r in runs), display_names([r["run"] for r in runs]), strict=True))
    for g in groups:
        table = Table(title=Text(g["group"]) if len(groups) > 1 else None, title_justify="left",
                      box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False, collapse_padding=True, show_edge=False)
        for col in ("run", "state", "con-\nverged", f"below {hi}\nseqs", "\ns", f"below {lo}\nseqs", "\ns", "best",
                    "roll-\nbacks", "train\ns"):
            table.add_column(col, justify="left" if col in ("run", "state") else "right",
                             overflow="fold", no_wrap=col != "run")
        for r in (r for r in runs if r["group"] == g["group"]):
            table.add_row(names[r["run"]], r["state"], "yes" if r["converged"] else "no",
                          n(r[f"sequences_to_below_{hi}"]), n(r[f"seconds_to_below_{hi}"]),
                          n(r[f"sequences_to_below_{lo}"]), n(r[f"seconds_to_below_{lo}"]),
                          n(r[best]), n(r["rollbacks"]), n(r["training_seconds"]))
        out.print(table)
        line = f"{g['group']}: converged {g['converged']} of {g['runs']}"
        if g[f"median_seconds_to_below_{lo}"] is not None:
            line += f"; to below {lo}, median (quartiles): " + ", ".join(
                f"{n(g[f'median_{w}_to_below_{lo}'])} ({n(g[f'q1_{w}_to_below_{lo}'])}-{n(g[f'q3_{w}_to_below_{lo}'])})"
                f" {unit}" for w, unit in (("sequences", "sequences"), ("seconds", "s")))
        out.print(Text(line))
    for r in runs:
        if r["group"] is None:
            out.print(Text(f"{names[r['run']]}: {r['state']}: {r['problem']}"))


@app.command(cls=_Command)
@cli_errors
def generalise(
    checkpoint: Annotated[Path, typer.Argument(metavar="CHECKPOINT", help="A checkpoint .npz, or a run folder "
                                                                          "(its best.npz, else checkpoint.npz).",
                                               show_default=False)],
    lengths: Annotated[str | None, typer.Option(
        metavar="LIST", help="Sizes, comma-separated: copy's and repeat-copy's sequence length, associative-recall's "
                             "number of items \\[default: the task's, from its training range to beyond it: "
                             "10,20,30,50,120 for copy trained on lengths 1-20].", show_default=False)] = None,
    repeats: Annotated[str | None, typer.Option(
        metavar="LIST", help="repeat-copy's repeat counts, each with every length \\[default: 5,10,15,20 for counts "
                             "1-10 in training].", show_default=False)] = None,
    sequences: Annotated[int, typer.Option(help="Fresh sequences at each size.")] = 100,
    memory_size: Annotated[int | None, typer.Option(
        metavar="N", help="Run the model with N memory locations instead of those it was trained with (no "
                          "parameter depends on N): a DNC trained with 32 locations cannot store a copy of 40 "
                          "vectors in them \\[default: as trained].", show_default=False)] = None,
    output: Annotated[Path | None, typer.Option(
        "-o", "--output", metavar="FILE", help="The figure (.png, .svg or .pdf); the trace of one sequence at the "
                                               "largest size goes beside it \\[default: generalise.png in a run "
                                               "folder, NAME_generalise.png beside a checkpoint file].",
        show_default=False)] = None,
    figure: Annotated[bool, typer.Option("--figure/--no-figure", help="Draw the figure and record the trace; "
                                                                      "--no-figure only measures.")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the rows as JSON, their units in the key names, "
                                                        "instead of a table.")] = False,
):
    """Measure a trained model beyond the sizes it was trained on: wrong bits per sequence and the
    share of sequences failed outright (more wrong bits than output steps) at each size.

    Each size has a fixed probe seed (1000 + the length or number of items; repeat-copy 1000 x the
    length + the repeat count), so a rerun gives the same numbers, figure and trace, byte for byte.

    Python: [bold]attnviz.generalise(checkpoint, lengths=[10, 20, 50, 120], sequences=100)[/bold]
    """
    from .generalisation import generalise as measure

    result = measure(checkpoint, _whole_numbers(lengths, "--lengths"), sequences,
                     _whole_numbers(repeats, "--repeats"), output, figure, memory_size)
    if as_json:
        _print_json(result)
        return
    _print_generalisation(result)


def _whole_numbers(text: str | None, option: str) -> list[int] | None:
    """'10,20,50' as [10, 20, 50]: sizes of 1 or more."""
    if text is None:
        return None
    parts = [p.strip() for p in text.split(",")]
    if not all(re.fullmatch(r"[0-9]+", p) for p in parts):
        raise typer.BadParameter(f"{option} {text!r} is not a list of whole numbers (e.g. 10,20,50,120)")
    if any(int(p) < 1 for p in parts):
        raise typer.BadParameter(f"{option} {text!r}: sizes are 1 or more")
    return [int(p) for p in parts]


def _print_generalisation(result: dict) -> None:
    from rich.table import Table

    ranges = result["training_range"]
    trained = ", ".join(f"{'lengths' if k == 'length' else k} {lo}-{hi}" for k, (lo, hi) in ranges.items())
    step = f" (step {result['step']:,})" if result["step"] else ""
    table = Table(title=Text(f"{result['task']}: {result['checkpoint']}{step}, {result['sequences_per_size']:,} "
                             f"fresh sequences at each size; trained on {trained}; {result['memory_size']} memory "
                             "locations"), title_justify="left")
    percent = {"failed_outright_fraction": "% failed outright", "no_wrong_bit_fraction": "% with no wrong bit",
               "end_marker_right_fraction": "% end marker at the right step"}
    numbers = {"in_training_range": "in training", "wrong_bits_per_sequence": "wrong bits per sequence",
               "scored_bits_per_sequence": "scored bits per sequence",
               "cross_entropy_bits_per_sequence": "cross-entropy bits per sequence"}
    columns = [*ranges, "in_training_range", "wrong_bits_per_sequence", "failed_outright_fraction",
               "no_wrong_bit_fraction", "scored_bits_per_sequence", "cross_entropy_bits_per_sequence"]
    columns += [k for k in ("end_marker_right_fraction",) if k in result["rows"][0]]
    for key in columns:
        header = percent.get(key) or numbers.get(key) or key
        table.add_column(header, justify="left" if key == "in_training_range" else "right",
                         min_width=max(map(len, header.split())))  # headers wrap between words, never within
    for row in result["rows"]:
        cells = []
        for key in columns:
            v = row[key]
            cells.append("yes" if v is True else "beyond" if v is False else f"{round(100 * v, 1):g}" if key in percent
                         else f"{v:,.3f}" if isinstance(v, float) else f"{v:,}")
        table.add_row(*cells)
    out.print(table)
    out.print(Text("% of sequences; failed outright: more wrong bits than output steps (on average more than one "
                   "wrong bit per step of output)"))
    if result["figure"]:
        out.print(Text(f"wrote {result['figure']}"))
        size = ", ".join(f"{k} {v}" for k, v in result["trace_size"].items())
        out.print(Text(f"wrote {result['trace']}: one sequence at the largest size ({size}); draw it with "
                       f"attnviz plot {result['trace']}"))


def main() -> None:
    app(prog_name="attnviz")


if __name__ == "__main__":
    sys.exit(main())
