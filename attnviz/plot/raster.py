"""The PNG back end: a Scene's cells painted into a frame drawn once per geometry.

The frame (axes, ticks, titles, labels, colour bars: the figure with its cells left out) is
drawn by the matplotlib back end and kept in memory and on disk (``framecache``); each trace
then only paints its cells and markers into the frame's pixels, which is most of what changes
between traces. A plot whose frame is cached imports no matplotlib at all.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

import numpy as np

from .colors import MASK_RGBA, NONFINITE_RGBA, WRAP_ALPHA, lut, lut_index
from .options import PlotOptions
from .plan import Scene, title_strip_inches
from .reduce import nearest


@dataclass
class Frame:
    """A drawn figure without its cells: pixels, and where each panel's cells go."""

    pixels: np.ndarray  # (H, W, 4) uint8, the figure as Agg drew it
    boxes: list[tuple[int, int, int, int]]  # per panel: top, bottom, left, right pixel (interior)


class Renderer:
    """Scenes to PNG bytes, reusing frames between traces of the same geometry. The same scene
    always gives the same bytes."""

    def __init__(self, options: PlotOptions | None = None, cache_size: int = 32, cache_dir=None):
        self.opts = (options or PlotOptions()).validated()
        self.cache_size = cache_size
        self._frames: dict[tuple, Frame] = {}
        self._strips: dict[tuple, np.ndarray] = {}
        self._luts: dict[str, np.ndarray] = {}
        self.disk = None
        if cache_dir is not None:
            from ..framecache import FrameCache

            self.disk = FrameCache(cache_dir)
        for name in self.opts.cmap_names:
            self.lut(name)  # an unknown colormap fails here, before any drawing

    def lut(self, name: str) -> np.ndarray:
        if name not in self._luts:
            stored = self.disk.load("lut", name) if self.disk else None
            if stored is not None and stored["lut"].shape == (256, 4) and stored["lut"].dtype == np.uint8:
                self._luts[name] = stored["lut"]
            else:
                self._luts[name] = lut(name)
                if self.disk:
                    self.disk.save("lut", name, lut=self._luts[name])
        return self._luts[name]

    def title_strip(self, scene: Scene) -> np.ndarray:
        """The top of the figure with its title: (rows, W, 4) uint8, from memory, disk, or drawn now."""
        o = scene.opts
        key = ("title", scene.suptitle, scene.figsize[0], o.dpi, o.fontsize, o.transparent)
        if key not in self._strips:
            stored = self.disk.load("title", repr(key)) if self.disk else None
            if stored is not None:
                self._strips[key] = stored["pixels"]
            else:
                self._strips[key] = draw_title_strip(scene)
                if self.disk:
                    self.disk.save("title", repr(key), pixels=self._strips[key])
            while len(self._strips) > 4 * self.cache_size:
                self._strips.pop(next(iter(self._strips)))
        return self._strips[key]

    def frame(self, scene: Scene) -> Frame:
        """The scene's frame, from memory, from the disk cache, or drawn now."""
        key = scene.frame_key()
        if key in self._frames:
            self._frames[key] = self._frames.pop(key)  # most recently used last
            return self._frames[key]
        stored = self.disk.load("frame", repr(key)) if self.disk else None
        if stored is not None:
            frame = Frame(stored["pixels"], [tuple(map(int, b)) for b in stored["boxes"]])
        else:
            frame = draw_frame(scene)
            if self.disk:
                self.disk.save("frame", repr(key), pixels=frame.pixels, boxes=np.array(frame.boxes, np.int64))
        self._frames[key] = frame
        while len(self._frames) > self.cache_size:
            self._frames.pop(next(iter(self._frames)))
        return frame

    def png(self, scene: Scene) -> bytes:
        return encode_png(self.pixels(scene), scene.opts.transparent)

    def pixels(self, scene: Scene) -> np.ndarray:
        """The figure as (H, W, 4) uint8 RGBA."""
        frame = self.frame(scene)
        canvas = frame.pixels.copy()
        if scene.suptitle:
            strip = self.title_strip(scene)
            canvas[: strip.shape[0], : strip.shape[1]] = strip
        for p, box in zip(scene.panels, frame.boxes, strict=True):
            if p.values is not None:
                paint(canvas, box, p.values, p.vmin, p.vmax, self.lut(p.plan.cmap), p.unscored,
                      getattr(p, "nonfinite", None) is not None)
                paint_markers(canvas, box, p.time, scene.markers, getattr(p, "ink", None))
                paint_wraps(canvas, box, p.rows, p.yticks.wraps)
        return canvas


def draw_frame(scene: Scene) -> Frame:
    from .draw import default_style, draw_scene

    with default_style():
        drawn = draw_scene(scene, paint=False)
        fig = drawn.figure
        fig.canvas.draw()
    pixels = np.asarray(fig.canvas.buffer_rgba()).copy()
    H = pixels.shape[0]
    boxes = []
    for ax in drawn.axes:
        x0, y0, x1, y1 = ax.get_window_extent().extents
        # Inside the spines (estimated; _snap_to_spines finds them in the drawn pixels).
        box = (int(round(H - y1)) + 1, int(round(H - y0)) - 1, int(round(x0)) + 1, int(round(x1)) - 1)
        boxes.append(_snap_to_spines(pixels, box))
    return Frame(pixels, boxes)


def draw_title_strip(scene: Scene) -> np.ndarray:
    """The title alone, drawn as it would be at the top of the whole figure."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from .draw import default_style, draw_title

    o = scene.opts
    with default_style():
        fig = Figure(figsize=(scene.figsize[0], title_strip_inches(o)), dpi=o.dpi)
        FigureCanvasAgg(fig)
        if o.transparent:
            fig.patch.set_alpha(0.0)
        draw_title(fig, scene.suptitle, o)
        fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba()).copy()


def paint(canvas, box, values, lo, hi, table, unscored=None, nonfinite: bool = True) -> None:
    """Paint (columns, rows) cells into a box of the canvas, each cell over the pixels nearest it;
    unscored columns in the mask grey, and NaN and infinities, over both, in NONFINITE_RGBA
    (``nonfinite=False``: the caller knows there is none)."""
    top, bottom, left, right = box
    cols = nearest(values.shape[0], right - left)
    rows = nearest(values.shape[1], bottom - top)[::-1]  # row 0 at the bottom
    idx = lut_index(values, lo, hi)
    rgba = table[idx[np.ix_(cols, rows)].T]  # (height, width, 4)
    if unscored is not None:
        rgba[:, unscored[cols]] = MASK_RGBA
    bad = ~np.isfinite(values) if nonfinite else None
    if bad is not None and bad.any():
        rgba[bad[np.ix_(cols, rows)].T] = NONFINITE_RGBA
    canvas[top:bottom, left:right] = rgba


def paint_markers(canvas, box, time, markers, ink: str | None = None) -> None:
    """A dashed line at the left edge of each marked step: white, or ``ink`` ("#rrggbb")."""
    top, bottom, left, right = box
    colour = 255 if ink is None else [int(ink[k : k + 2], 16) for k in (1, 3, 5)]
    t0, t1 = time
    for step in markers:
        x = left + int(round((step - t0) * (right - left) / (t1 - t0)))
        x = min(max(x, left), right - 1)
        rows = np.arange(top, bottom)
        canvas[rows[(rows - top) % 8 < 4], x, :3] = colour


def paint_wraps(canvas, box, rows, wraps) -> None:
    """A faint white line (the cells show through it) where the location numbers wrap from N-1 to 0:
    the pixel row just below the boundary, along the top of location N-1's cells (location 0, where
    heads often wait, stays untouched)."""
    top, bottom, left, right = box
    y0, y1 = rows
    for w in wraps:
        y = bottom - int(round((w + 0.5 - y0) * (bottom - top) / (y1 - y0)))
        y = min(max(y, top), bottom - 1)
        line = canvas[y, left:right, :3].astype(np.float64)
        canvas[y, left:right, :3] = np.round(line + WRAP_ALPHA * (255 - line)).astype(np.uint8)


def _snap_to_spines(pixels: np.ndarray, box, reach: int = 3) -> tuple[int, int, int, int]:
    """Move each edge of an estimated box to just inside the spine drawn near it.

    Agg snaps lines to whole pixels its own way; a box rounded from the axes' float extent can
    miss a spine by one pixel, leaving a seam or painting over the spine. Ticks sit outside the
    spines, so the spine is the innermost dark, opaque line within ``reach`` pixels.
    """
    top, bottom, left, right = box
    mid_row, mid_col = (top + bottom) // 2, (left + right) // 2

    def dark(line):
        return (line[:, 3] > 128) & (line[:, :3].max(axis=1) < 100)

    def inner(lo, hi, line, last):
        hits = np.nonzero(dark(line[max(lo, 0):hi]))[0] + max(lo, 0)
        return None if hits.size == 0 else int(hits[-1] if last else hits[0])

    H, W = pixels.shape[:2]
    t = inner(top - reach, top + reach, pixels[:, mid_col], last=True)
    b = inner(bottom - reach, min(bottom + reach, H), pixels[:, mid_col], last=False)
    lft = inner(left - reach, left + reach, pixels[mid_row], last=True)
    r = inner(right - reach, min(right + reach, W), pixels[mid_row], last=False)
    return (top if t is None else t + 1, bottom if b is None else b,
            left if lft is None else lft + 1, right if r is None else r)


def encode_png(rgba: np.ndarray, transparent: bool) -> bytes:
    """PNG bytes of an (H, W, 4) uint8 image: RGB, or RGBA if transparent.

    Written directly (rows unfiltered, zlib level 6): faster than Pillow's encoder on these
    flat-coloured figures (docs/performance.md) and with no timestamp, so the same pixels always
    give the same bytes.
    """
    pixels = rgba if transparent else rgba[:, :, :3]
    H, W, channels = pixels.shape
    rows = np.zeros((H, 1 + W * channels), np.uint8)  # each row: filter type 0, then its pixels
    rows[:, 1:] = pixels.reshape(H, -1)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", W, H, 8, 6 if transparent else 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"tEXt", b"Software\x00attnviz")
            + chunk(b"IDAT", zlib.compress(rows.tobytes(), 6)) + chunk(b"IEND", b""))
