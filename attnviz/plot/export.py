"""Figures to files: output names and formats, one trace or one open file's trace at a time."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from ..errors import OptionError
from .options import FORMATS, PlotOptions
from .plan import Scene, build_scene
from .raster import Renderer
from .source import Source


def scene_bytes(scene: Scene, fmt: str, renderer: Renderer) -> bytes:
    """One Scene in one format: PNG through the raster, SVG and PDF through matplotlib, HTML as an
    interactive page."""
    if fmt == "png":
        return renderer.png(scene)
    if fmt == "html":
        from .html import page

        return page([scene]).encode()
    from .draw import vector_bytes

    return vector_bytes(scene, fmt)


def export(trace, path, options: PlotOptions | None = None, formats=None, renderer: Renderer | None = None,
           **kw) -> list[Path]:
    """Draw an in-memory Trace and write it to ``path`` (the suffix picks the format) or to
    ``path`` with each of ``formats``. Writes are atomic. Returns the paths written."""
    opts = replace(options or PlotOptions(), **kw).validated()
    renderer = renderer or Renderer(opts)
    scene = build_scene(Source.of_trace(trace, opts), opts)
    return write_outputs(path, formats, lambda fmt: scene_bytes(scene, fmt, renderer))


def check_formats(formats) -> None:
    for fmt in formats or ():
        if fmt not in FORMATS:
            raise OptionError(f"unknown output format {fmt!r}; use {', '.join(FORMATS)}")


def check_output_name(path) -> None:
    """An output named by the user: a file whose suffix, if any, is a format we write."""
    path = Path(path)
    suffix = path.suffix.lower().lstrip(".")
    if suffix and suffix not in FORMATS:
        raise OptionError(f"{path}: unknown output format {suffix!r}; name a .{', .'.join(FORMATS)} file")
    if path.is_dir():
        raise OptionError(f"{path} is a folder; --output names a file (--out-dir names a folder)")


def output_paths(path, formats) -> list[tuple[Path, str]]:
    path = Path(path)
    fmts = list(formats or [])
    if not fmts:
        fmt = path.suffix.lower().lstrip(".") or "png"
        if fmt not in FORMATS:
            raise OptionError(f"{path}: unknown output format {fmt!r}; use {', '.join(FORMATS)}")
        return [(path if path.suffix else path.with_suffix(".png"), fmt)]
    check_formats(fmts)
    check_output_name(path)
    base = path.with_suffix("") if path.suffix.lower().lstrip(".") in FORMATS else path
    return [(base.with_name(f"{base.name}.{fmt}"), fmt) for fmt in dict.fromkeys(fmts)]


def write_outputs(path, formats, make_bytes) -> list[Path]:
    from ..io import atomic_path

    written = []
    for out, fmt in output_paths(path, formats):
        data = make_bytes(fmt)
        with atomic_path(out) as tmp:
            tmp.write_bytes(data)
        written.append(out)
    return written
