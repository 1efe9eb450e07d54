"""The attnviz command line: one function per command, each a thin layer over the Python API.

Heavy modules (numpy, h5py, matplotlib) are imported inside the commands, so that
``attnviz --help`` starts at once.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

from . import __version__

app = typer.Typer(
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
    unexpected into one line and exit code 2 (never a traceback)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        from .errors import AttnvizError

        try:
            return fn(*args, **kwargs)
        except (typer.Exit, typer.Abort, SystemExit):
            raise
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
            raise typer.Exit(2) from None

    return wrapper


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
        raise typer.BadParameter(f"{value!r} is not a size (e.g. 500M, 4G)") from None


Files = Annotated[list[Path], typer.Argument(help="Trace files (.h5, .hdf5, .npz).", show_default=False)]
MaxBytes = Annotated[str | None, typer.Option(
    "--max-bytes", help="Largest array to read whole, e.g. 500M or 8G "
                        "[default: $ATTNVIZ_MAX_BYTES or 4G].", show_default=False)]


# --------------------------------------------------------------------- inspect


@app.command()
@cli_errors
def inspect(
    files: Files,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
    max_bytes: MaxBytes = None,
):
    """Show the traces in trace files: datasets, shapes, dtypes, value ranges, metadata.

    Python: [bold]attnviz.summarize(path)[/bold]
    """
    import json

    from .errors import AttnvizError
    from .inspect import summarize

    limit = parse_max_bytes(max_bytes)
    summaries, failed = [], False
    for path in files:
        try:
            summaries.append(summarize(path, limit))
        except AttnvizError as e:
            error_line(str(e))
            failed = True
    if as_json:
        out.print_json(json.dumps(summaries if len(files) > 1 else (summaries[0] if summaries else None)))
    else:
        for s in summaries:
            _print_summary(s)
    for s in summaries:
        for t in s["traces"]:
            for line in t["problems"]:
                err.print(Text(line))
                failed = True
    if failed:
        raise typer.Exit(1)


def _print_summary(s: dict) -> None:
    from rich.table import Table

    table = Table(title=Text(f"{s['file']} ({s['format']}, {len(s['traces'])} trace(s))"),
                  title_justify="left")
    for col in ("trace", "dataset", "shape", "dtype", "min", "max"):
        table.add_column(col, justify="right" if col in ("min", "max") else "left")
    for t in s["traces"]:
        first = True
        for key, d in t["datasets"].items():
            table.add_row(Text(t["name"] if first else ""), key, "x".join(map(str, d["shape"])),
                          d["dtype"], _num(d["min"]), _num(d["max"]))
            first = False
        meta = ", ".join(f"{k}={v}" for k, v in t["metadata"].items())
        if meta:
            table.add_row("", Text(meta, style="dim"), "", "", "", "")
        cd = t.get("copy_diagnostics")
        if cd:
            table.add_row("", Text(_copy_line(cd), style="dim"), "", "", "", "")
        table.add_section()
    out.print(table)


def _num(x) -> str:
    return "" if x is None else f"{x:.4g}"


def _copy_line(cd: dict) -> str:
    if "error" in cd:
        return f"copy diagnostics: {cd['error']}"
    w, r = cd["write"], cd["read"]
    return (f"copy: {'learned' if cd['learned'] else 'NOT learned'}; write peak {w['mean_peak']:.2f}, "
            f"steady {w['steady_fraction']:.0%}; read peak {r['mean_peak']:.2f}, steady "
            f"{r['steady_fraction']:.0%}; reads at written locations {cd['reads_written_fraction']:.0%}")


# -------------------------------------------------------------------- validate


@app.command()
@cli_errors
def validate(
    files: Files,
    weightings: Annotated[bool, typer.Option(
        "--weightings", help="Also check that weightings lie in [0, 1] and sum to 1 over locations.")] = False,
    tol: Annotated[float, typer.Option(help="Tolerance for --weightings.")] = 1e-3,
    max_bytes: MaxBytes = None,
):
    """Check trace files against the trace format; exit 1 with one line per problem.

    Python: [bold]attnviz.validate_file(path)[/bold] returns the problem lines.
    """
    from .io import validate_file

    limit = parse_max_bytes(max_bytes)
    bad = 0
    for path in files:
        problems = validate_file(path, tol if weightings else None, limit)
        for line in problems:
            err.print(Text(line))
        if problems:
            bad += 1
        else:
            out.print(Text(f"ok: {path}"))
    if bad:
        raise typer.Exit(1)


# --------------------------------------------------------------------- convert


@app.command()
@cli_errors
def convert(
    src: Annotated[Path, typer.Argument(help="Trace file to read.", show_default=False)],
    dst: Annotated[Path, typer.Argument(help="File to write; .h5/.hdf5 or .npz picks the format.",
                                        show_default=False)],
    max_bytes: MaxBytes = None,
):
    """Convert a trace file between HDF5 and NPZ, losslessly (arrays, dtypes, metadata, names).

    Python: [bold]attnviz.convert(src, dst)[/bold]
    """
    from .io import convert as convert_file

    convert_file(src, dst, parse_max_bytes(max_bytes))
    out.print(Text(f"wrote {dst}"))


def main() -> None:
    app(prog_name="attnviz")


if __name__ == "__main__":
    sys.exit(main())
