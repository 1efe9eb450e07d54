"""Figures to files: output names and formats, one trace or one open file's trace at a time."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

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
    page = "html" in [fmt for _, fmt in output_paths(path, formats)]
    scene = build_scene(Source.of_trace(trace, opts), opts, page=page)
    return write_outputs(path, formats, lambda fmt: scene_bytes(scene, fmt, renderer))


_renderer: Renderer | None = None  # render()'s, kept while the options stay the same (a training loop's)


def render(trace, options: PlotOptions | None = None, *, name: str | None = None, max_bytes: int | None = None,
           allow_external: bool = False, **kw):
    """The figure's pixels as a numpy array: exactly those of the PNG ``attnviz plot`` writes for
    this trace and these options, (H, W, 3) uint8 RGB ((H, W, 4) RGBA with ``transparent``), for
    an image logger (TensorBoard's ``add_image(..., dataformats="HWC")``, ``wandb.Image``) without
    a file. ``trace`` is a Trace, or a trace file's path (``name`` picks one of its traces).
    Keyword arguments set PlotOptions fields. Frames are kept between calls with the same options,
    in memory and in the disk cache that ``attnviz plot`` uses (attnviz.framecache)."""
    from ..framecache import default_dir
    from ..io import open_traces
    from ..trace import Trace

    global _renderer
    opts = replace(options or PlotOptions(), **kw).validated()
    if _renderer is None or _renderer.opts != opts:
        _renderer = Renderer(opts, cache_dir=default_dir())
    if isinstance(trace, Trace):
        if name is not None:
            raise OptionError("name picks a trace of a file; a Trace is drawn as it is")
        scene = build_scene(Source.of_trace(trace, opts), opts)
    else:
        with open_traces(trace, max_bytes, allow_external) as f:
            scene = build_scene(Source(f, f.resolve(name), opts), opts)
    pixels = _renderer.pixels(scene)
    return pixels if opts.transparent else np.ascontiguousarray(pixels[:, :, :3])


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
