"""Animations: many traces (a run's snapshots) as the frames of one GIF (or MP4), on one shared view.

Every frame has the same geometry, crop and colour scales, decided in a first pass over all the
traces, so that a colour means the same value in every frame. Frames are drawn by the PNG back
end (their frame is drawn once) and written as they are drawn: memory does not grow with the
number of frames. GIFs use one fixed palette (the panels' colormaps and greys), so the same
traces and options always give the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..errors import AttnvizError, OptionError
from .colors import LUT_SIZE, MASK_RGBA, NONFINITE_RGBA
from .options import PANELS, PlotOptions, one_trace
from .plan import build_scene, memory_rows
from .raster import Renderer
from .source import Source

VIDEO_EXTRA = "pip install 'attnviz[video]'"


@dataclass(frozen=True)
class Snapshot:
    path: Path
    name: str
    step: int | None


def snapshots(files, max_bytes: int | None = None, allow_external: bool = False) -> list[Snapshot]:
    """Every trace in ``files``, ordered by their ``step`` metadata (those without one last), then name."""
    from ..io import open_traces, trace_files

    out = []
    for path in trace_files(files, allow_external=allow_external):
        with open_traces(path, max_bytes, allow_external) as f:
            for name in f.names:  # a file with none (a run's first minutes) adds none
                step = f.info(name).metadata.get("step")
                out.append(Snapshot(Path(path), name, step if isinstance(step, int) else None))
    return sorted(out, key=lambda s: (s.step is None, s.step or 0, s.name, str(s.path)))


def shared_view(items: list[Snapshot], opts: PlotOptions, max_bytes=None, allow_external: bool = False
                ) -> tuple[tuple[int, int] | None, dict]:
    """The crop and colour limits every frame shares: the crop holding every frame's memory in use,
    and for each panel whose scale follows its data, the range over all frames."""
    from ..errors import AttnvizError

    def checked():  # one scene at a time, as common_view reads them: the memory stays bounded
        first = None
        for item, scene in zip(items, _scenes(items, opts, max_bytes, allow_external=allow_external), strict=True):
            if scene.peaks is not None:
                first = first or (scene.peaks.size, item)
                if scene.peaks.size != first[0]:
                    raise AttnvizError(f"{item.path}: trace {item.name!r} has {scene.peaks.size} memory locations, but "
                                       f"{first[1].path} trace {first[1].name!r} has {first[0]}: an animation's frames "
                                       "share one view of the memory; animate traces of one size")
            yield scene

    return common_view(checked(), opts)


def common_view(scenes, opts: PlotOptions) -> tuple[tuple[int, int] | None, dict]:
    """The crop and colour limits that Scenes of several traces share (see shared_view)."""
    peaks, dwell, ranges = None, None, {}
    for scene in scenes:
        if scene.peaks is not None:
            peaks = scene.peaks if peaks is None else np.maximum(peaks, scene.peaks)
            dwell = scene.dwell if dwell is None else dwell + scene.dwell
        for p in scene.panels:
            if p.values is not None and PANELS[p.plan.key].scale != "probability":
                lo, hi = ranges.get(p.plan.key, (p.vmin, p.vmax))
                ranges[p.plan.key] = (min(lo, p.vmin), max(hi, p.vmax))
    shared = peaks is not None and opts.locations in ("auto", "all")
    band = memory_rows(peaks, dwell, opts.locations) if shared else None
    return band, ranges


def _scenes(items, opts, max_bytes, band=None, allow_external=False):
    from ..io import open_traces

    for item in items:
        with open_traces(item.path, max_bytes, allow_external) as f:
            yield build_scene(Source(f, item.name, opts), opts, band=band, by_task=False)  # the grid, for any task


def shared_scenes(items: list[Snapshot], opts: PlotOptions, max_bytes=None, allow_external: bool = False):
    """The snapshots' Scenes, one at a time, all on the shared view (limits given in opts win)."""
    band, ranges = shared_view(items, opts, max_bytes, allow_external)
    opts = replace(opts, limits={**ranges, **opts.limits}).validated()
    yield from _scenes(items, opts, max_bytes, band, allow_external)


def frames(items: list[Snapshot], opts: PlotOptions, max_bytes=None, renderer: Renderer | None = None,
           allow_external: bool = False):
    """The frames (RGBA arrays, one per snapshot) on the shared view, one at a time."""
    renderer = renderer or Renderer(opts)
    for scene in shared_scenes(items, opts, max_bytes, allow_external):
        yield renderer.pixels(scene)


def animate(files, output, options: PlotOptions | None = None, fps: float = 4.0, max_bytes: int | None = None,
            allow_external: bool = False, **kw) -> Path:
    """Draw every trace of ``files`` as one frame of ``output`` (.gif, or .mp4 with the video extra),
    in the order of their ``step`` metadata. Keyword arguments set PlotOptions fields.
    ``allow_external`` lets trace files lead to other files, and folders' symbolic links be followed."""
    from ..io import atomic_path

    opts = replace(options or PlotOptions(), **kw).validated()
    if opts.layout == "addressing":
        raise OptionError("layout addressing draws one trace's head, with attnviz plot; an animation's frames "
                          "take the grid or paper layout")
    one_trace(opts, "an animation")
    output = Path(output)
    suffix = output.suffix.lower()
    if suffix not in (".gif", ".mp4"):
        raise OptionError(f"{output}: animations are written as .gif or .mp4, not {output.suffix or 'no suffix'!r}")
    if not fps > 0:
        raise OptionError(f"--fps {fps} must be above 0")
    items = snapshots(files, max_bytes, allow_external)
    if not items:
        raise AttnvizError("no traces to animate in " + ", ".join(map(str, files)))
    renderer = Renderer(opts)
    with atomic_path(output) as tmp:
        if suffix == ".gif":
            palette = gif_palette([renderer.lut(c) for c in _cmaps(opts)])
            write_gif(tmp, frames(items, opts, max_bytes, renderer, allow_external), fps, palette)
        else:
            write_mp4(tmp, frames(items, opts, max_bytes, renderer, allow_external), fps)
    return output


def _cmaps(opts: PlotOptions) -> list[str]:
    from .colors import DIVERGING, SEQUENTIAL

    return list(dict.fromkeys([*(opts.cmap_names or ()), SEQUENTIAL, DIVERGING]))


def gif_palette(luts: list[np.ndarray]) -> np.ndarray:
    """256 colours: 32 greys (text, axes, the unscored grey), the non-finite colour, and the rest
    shared by the colormaps."""
    greys = np.linspace(0, 255, 31).round().astype(np.uint8)
    colours = [np.stack([greys] * 3, axis=1), np.array([MASK_RGBA[:3], NONFINITE_RGBA[:3]], np.uint8)]
    each = (256 - 33) // len(luts)
    for table in luts:
        colours.append(table[np.linspace(0, LUT_SIZE - 1, each).round().astype(int), :3])
    palette = np.concatenate(colours)
    return np.concatenate([palette, np.zeros((256 - len(palette), 3), np.uint8)])


def write_gif(path: Path, rgba_frames, fps: float, palette: np.ndarray) -> int:
    """Write frames as a looping GIF with a fixed palette, one frame at a time. Returns the count."""
    from PIL import GifImagePlugin, Image

    reference = Image.new("P", (1, 1))
    reference.putpalette(palette.tobytes())
    delay = max(1, round(100 / fps)) * 10  # GIF delays are in hundredths of a second
    n = 0
    with open(path, "wb") as fp:
        for rgba in rgba_frames:
            im = Image.fromarray(np.ascontiguousarray(rgba[:, :, :3])).quantize(
                palette=reference, dither=Image.Dither.NONE)
            if n == 0:
                header, _ = GifImagePlugin.getheader(im, palette.tobytes(), {"loop": 0, "duration": delay})
                fp.write(b"".join(header))
            fp.write(b"".join(GifImagePlugin.getdata(im, duration=delay, disposal=1)))
            n += 1
        fp.write(b";")
    return n


def write_mp4(path: Path, rgba_frames, fps: float) -> int:
    """Write frames as an H.264 MP4 through imageio-ffmpeg (the optional video extra)."""
    try:
        import imageio_ffmpeg
    except ImportError:
        raise AttnvizError(f"{path}: MP4 needs an encoder: {VIDEO_EXTRA} (or write a .gif)") from None
    writer, n = None, 0
    for rgba in rgba_frames:
        rgb = np.ascontiguousarray(rgba[: rgba.shape[0] // 2 * 2, : rgba.shape[1] // 2 * 2, :3])
        if writer is None:
            writer = imageio_ffmpeg.write_frames(str(path), (rgb.shape[1], rgb.shape[0]), fps=fps, codec="libx264",
                                                 pix_fmt_out="yuv420p", macro_block_size=1,
                                                 output_params=["-f", "mp4"])  # the name ends in .tmp
            writer.send(None)
        writer.send(rgb)
        n += 1
    if writer is not None:
        writer.close()
    return n
