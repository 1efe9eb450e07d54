"""Every visual decision, made once: which panels, where they go, what each pixel shows.

``build_scene(source, opts)`` turns a trace and validated options into a ``Scene``: the figure's
geometry, title and markers, and per panel a grid of cells already read, windowed, reduced to
the picture's resolution, cropped to the memory in use and masked, with its colour scale and
labels. The back ends (``raster`` for PNG, ``draw`` for matplotlib: SVG, PDF, ``plot_trace``)
only paint a Scene; neither decides anything of its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..errors import OptionError
from .colors import DIVERGING, NONFINITE_NAME, SEQUENTIAL, nonfinite_label
from .options import (
    LAYOUTS,
    LOCATION_PANELS,
    MASKED_PANELS,
    PANELS,
    PER_HEAD,
    WEIGHTING_PANELS,
    PlotOptions,
    check_pixels,
    default_figsize,
)
from .reduce import reduce_axis, spread
from .rows import arrange

USED = 0.05  # a location whose weight exceeds this at some step is "in use" (uniform over 128 is 0.008)
BAND_STEP = 4  # crops of 8 or more locations start and end on multiples of this
CUT = 8  # the whole memory is cut open in the middle of a stretch of at least this many locations
EDGE = 4  # ... unless the CUT-wide stretch at the end of memory (N-4..3) is unused already
NICE = (1, 2, 5, 10, 20, 25, 50)  # tick steps, and these times powers of ten
MOST_TICKS = {"x": 7, "y": 6}  # labelled ticks along time, along rows, at most
TITLE_KEYS = (("step", "step {}"), ("sequences", "{:,} sequences"), ("sequence_length", "length {}"))


@dataclass(frozen=True)
class PanelPlan:
    """One panel before any data is read: the dataset (and head) it shows, title and colour map."""

    key: str
    head: int | None
    title: str
    cmap: str
    present: bool = True  # False: the layout names a dataset this trace did not record


@dataclass(frozen=True)
class Ticks:
    """One axis's ticks, decided once for every back end (PNG, SVG, PDF and the interactive view).

    ``positions`` are row (or step) coordinates, ``labels`` what is written there (true location
    numbers on a rolled axis); ``steps`` is the step between labels, then the finer ones the
    interactive view switches to when zoomed in; ``wraps`` are the coordinates (between two rows)
    where the location numbers wrap from N-1 to 0, marked with a faint white line."""

    positions: tuple[int, ...] = ()
    labels: tuple[str, ...] = ()
    steps: tuple[int, ...] = (1,)
    wraps: tuple[float, ...] = ()


@dataclass
class PanelGrid:
    """One panel as the back ends paint it.

    ``values`` holds cells with time on axis 0 and rows upwards on axis 1: at most one cell
    per pixel, so a back end only repeats cells (nearest neighbour), never reduces them.
    Rows are in "unwrapped" location coordinates ``rows[0]..rows[1]``; a crop that wraps from
    N-1 to 0 runs past N, and ``modulo`` (N) turns a coordinate back into a location number.
    """

    plan: PanelPlan
    ylabel: str
    values: np.ndarray | None  # (columns, rows) float64; None when not recorded
    vmin: float = 0.0
    vmax: float = 1.0
    unscored: np.ndarray | None = None  # (columns,) bool: drawn in the mask colour
    time: tuple[int, int] = (0, 1)  # steps [t0, t1)
    rows: tuple[int, int] = (0, 1)  # row coordinates [y0, y1)
    modulo: int | None = None
    raw: np.ndarray | None = None  # the cells before a max reduction's spreading: what each one stands for
    nonfinite: str | None = None  # the legend of the cells drawn in NONFINITE_RGBA ("NaN, +inf"); None: none
    locations: np.ndarray | None = None  # rows in written order: each row's location (rows are 0..n-1)
    row_ticks: Ticks | None = None  # ticks decided with the rows (written order, named rows); None: axis_ticks
    row_names: tuple[str, ...] | None = None  # rows that are named, not numbered (read modes): each row's name

    @property
    def title(self) -> str:
        return self.plan.title if self.plan.present else f"{self.plan.title} (not recorded)"

    @property
    def xticks(self) -> Ticks:
        return axis_ticks(*self.time, MOST_TICKS["x"])

    @property
    def yticks(self) -> Ticks:
        if self.values is None:
            return Ticks()
        return self.row_ticks if self.row_ticks is not None else axis_ticks(*self.rows, MOST_TICKS["y"], self.modulo)

    @property
    def of_locations(self) -> bool:
        """Rows that are memory locations (in index or written order)."""
        return self.modulo is not None or self.locations is not None


@dataclass
class Scene:
    """A whole figure, decided: what ``raster`` and ``draw`` paint."""

    opts: PlotOptions
    grid: tuple[int, int]
    figsize: tuple[float, float]
    suptitle: str | None
    panels: list[PanelGrid]
    markers: tuple[int, ...]  # time steps with a dashed line before them
    warnings: list[str] = field(default_factory=list)
    peaks: np.ndarray | None = None  # (N,) each location's peak weight in the window; None if not read whole
    dwell: np.ndarray | None = None  # (N,) each location's weight summed over the drawn columns (with peaks)
    source_meta: dict = field(default_factory=dict)  # the trace's metadata (step, sequences: the interactive view)
    alternate: Scene | None = None  # for the page: the same figure with its locations in the other order
    links: dict | None = None  # for the page: the link matrix of each column's step (dnc.link_cells)

    def rects(self) -> list[tuple[float, float, float, float]]:
        return axes_rects(self.grid, self.figsize, self.opts, self.suptitle is not None)[: len(self.panels)]

    def frame_key(self) -> tuple:
        """Everything that shapes the figure apart from its cells and its title's text (for the
        raster's frame cache: the title is painted in a strip of its own, so that the snapshots
        of a run, or traces of one length, share a frame)."""
        o = self.opts
        return (self.grid, self.figsize, o.dpi, o.fontsize, o.transparent, o.colorbar, self.suptitle is not None,
                tuple((p.title, p.ylabel, p.plan.cmap, p.plan.present, p.time, p.rows, p.modulo,
                       (p.vmin, p.vmax) if o.colorbar else None) + ((p.nonfinite,) if p.nonfinite else ())
                      + ((p.row_ticks,) if p.row_ticks is not None else ()) for p in self.panels))


# ------------------------------------------------------------------ geometry


TITLE_ROOM, TITLE_TOP = 0.35, 0.12  # inches (at font size 10) above the panels for a title, and above its text


def title_strip_inches(opts: PlotOptions) -> float:
    """The strip at the top of a figure that holds its title and nothing else."""
    return int(TITLE_ROOM * opts.fontsize / 10 * opts.dpi) / opts.dpi


def axes_rects(grid, figsize, opts: PlotOptions, titled: bool) -> list[tuple[float, float, float, float]]:
    """Each panel's (left, bottom, width, height) in figure fractions, row by row from the top.

    Margins are fixed in inches and scale with the font (no layout engine: fast, and the same
    for every trace), so both back ends, and the raster's pixel sizes, agree without drawing.
    """
    rows, cols = grid
    w, h = figsize
    s = opts.fontsize / 10
    bar = 0.55 * s if opts.colorbar else 0.0  # room for a colour bar and its tick labels
    left, right, bottom, top = 0.75 * s, 0.2 * s + bar, 0.55 * s, (0.35 + (TITLE_ROOM if titled else 0)) * s
    hgap, vgap = 0.85 * s + bar, 0.95 * s
    cw = (w - left - right - hgap * (cols - 1)) / cols
    ch = (h - top - bottom - vgap * (rows - 1)) / rows
    if cw <= 0 or ch <= 0:
        raise OptionError(f"figure of {w:g}x{h:g} inches leaves no room for {rows}x{cols} panels; "
                           "enlarge --figsize or lower --fontsize")
    out = []
    for r in range(rows):
        for c in range(cols):
            x0 = left + c * (cw + hgap)
            y0 = bottom + (rows - 1 - r) * (ch + vgap)
            out.append((x0 / w, y0 / h, cw / w, ch / h))
    return out


def pixel_size(rect, figsize, dpi) -> tuple[int, int]:
    """Pixels inside a panel's spines (about: the raster finds the exact box in the drawn frame)."""
    return max(1, int(rect[2] * figsize[0] * dpi) - 2), max(1, int(rect[3] * figsize[1] * dpi) - 2)


# --------------------------------------------------------------------- ticks


def _ladder(span: int) -> list[int]:
    """NICE steps times powers of ten, ascending, up to the first one at least ``span``."""
    out, scale = [], 1
    while not out or out[-1] < span:
        out += [n * scale for n in NICE if n * scale > (out[-1] if out else 0)]
        scale *= 10
    return out


def _marks(lo: int, hi: int, step: int, modulo: int | None) -> Sequence[int]:
    """Coordinates in [lo, hi) whose label (the coordinate modulo ``modulo``) is a multiple of
    ``step``; where ``step`` does not divide ``modulo``, a mark closer than half a step below a
    wrap whose 0 is marked is left out, so that labels never crowd the wrap."""
    if not modulo:
        return range(-(-lo // step) * step, hi, step)
    out = []
    for base in range(lo - lo % modulo, hi, modulo):  # one stretch of locations 0..N-1 at a time
        out += range(max(lo, base) + (-(max(lo, base) - base)) % step, min(hi, base + modulo), step)
    if modulo % step:
        out = [v for v in out if not (v % modulo > modulo - step / 2 and v - v % modulo + modulo < hi)]
    return out


def axis_ticks(lo: int, hi: int, most: int, modulo: int | None = None) -> Ticks:
    """Ticks for the coordinates [lo, hi): round labels, evenly spaced, at most ``most`` of them.

    Steps are 1, 2, 5, 10, 20, 25, 50, ... On a location axis (``modulo`` N) steps that divide N come
    first, then powers of two that do (8, 16 or 32 for 128 locations), so that the ticks stay evenly
    spaced across the wrap from N-1 to 0, and 0 is one of them."""
    ladder = _ladder(hi - lo)
    ladders = [ladder]
    if modulo:
        powers = [2**k for k in range(modulo.bit_length())]
        ladders = [[s for s in steps if modulo % s == 0] for steps in (ladder, powers)] + ladders
    for steps in ladders:
        fits = [s for s in steps if 2 <= len(_marks(lo, hi, s, modulo)) <= most]
        if fits:
            ladder, step = steps, fits[0]
            break
    else:  # room for one tick at most
        step = next(s for s in ladder if len(_marks(lo, hi, s, modulo)) <= most)
    at = _marks(lo, hi, step, modulo)
    wraps = tuple(float(w) - 0.5 for w in range(lo - lo % modulo + modulo, hi, modulo)) if modulo else ()
    return Ticks(tuple(at), tuple(str(v % modulo if modulo else v) for v in at),
                 tuple(s for s in reversed(ladder) if s <= step), wraps)


# ---------------------------------------------------------------------- plan


def plan_panels(shapes: dict[str, tuple], opts: PlotOptions, error) -> tuple[list[PanelPlan], tuple[int, int],
                                                                              list[str]]:
    """Panels and grid for a trace with datasets of these shapes; and a warning for each panel
    of the layout the trace did not record (a panel named in ``opts.panels`` must exist).

    A head that a dataset does not have (``opts.head``), or more panels (one per head) than the
    cells of ``opts.grid``, raises OptionError, located like ``error``'s messages."""
    names, grid = LAYOUTS[opts.layout]
    if opts.panels:
        names = tuple(opts.panels)
        grid = opts.grid or (int(np.ceil(len(names) / 2)), min(2, len(names)))
    elif opts.grid:
        grid = opts.grid
    panels, warnings = [], []
    for key in names:
        kind = PANELS[key]
        cmap = opts.panel_cmaps.get(key) or opts.cmap or (DIVERGING if kind.scale == "signed" else SEQUENTIAL)
        if key not in shapes:
            if opts.panels:
                raise error(f"panel {key!r} needs dataset {key!r}, which this trace does not have "
                            f"(it has {', '.join(shapes)})")
            warnings.append(str(error("not recorded; its panel is left empty", key)))
            panels.append(PanelPlan(key, None, kind.title, cmap, present=False))
            continue
        shape = shapes[key]
        heads = shape[1] if key in PER_HEAD and len(shape) == 3 else 0
        if key in PER_HEAD and opts.head is not None and not opts.head < (heads or 1):  # (T, N): one head
            has = f"{heads} heads, 0 to {heads - 1}" if heads > 1 else "1 head, head 0"
            raise OptionError(str(error(f"head {opts.head} does not exist; it has {has}", key)))
        if heads and opts.head is not None:
            panels.append(PanelPlan(key, opts.head, f"{kind.title} (head {opts.head})", cmap))
        elif heads > 1:
            panels += [PanelPlan(key, h, f"{kind.title} (head {h})", cmap) for h in range(heads)]
        else:
            panels.append(PanelPlan(key, 0 if heads else None, kind.title, cmap))
    rows, cols = grid
    if rows * cols < len(panels):
        if opts.grid:  # asked for: never grown behind the user's back
            raise OptionError(str(error(f"grid {rows}x{cols} has {rows * cols} cells but this trace has "
                                        f"{len(panels)} panels, one per head; give a larger --grid or pick "
                                        "a --head")))
        rows = int(np.ceil(len(panels) / cols))
    return panels, (rows, cols), warnings


def title_text(metadata: dict, name: str, opts: PlotOptions) -> str | None:
    if isinstance(opts.title, str):
        return opts.title or None
    if not opts.title:
        return None
    bits = [str(metadata["task"])] if "task" in metadata else []
    bits += [label.format(metadata[k]) for k, label in TITLE_KEYS if k in metadata]
    step = metadata.get("step")
    if name != "/" and not (isinstance(step, int) and name.rpartition("/")[2] == f"step_{step:07d}"):
        bits.insert(0, name)  # a snapshot named after its step says nothing more
    return " · ".join(bits) or None


def phase_starts(metadata: dict, mask: np.ndarray | None) -> tuple[int, ...]:
    """The first step of each output phase: every step where scoring starts (a multi-copy episode has
    one per copy), else the step after a copy's delimiter."""
    if mask is not None:
        m = np.asarray(mask, bool)
        return tuple(int(t) for t in np.flatnonzero(m & ~np.concatenate([[False], m[:-1]])))
    if metadata.get("task") == "copy" and isinstance(metadata.get("sequence_length"), int):
        return (metadata["sequence_length"] + 1,)
    return ()


def time_markers(source, opts: PlotOptions) -> tuple[int, ...]:
    """The steps to mark with a dashed line within the window: --marker's, and each output phase's start
    (wherever it starts, whatever the window)."""
    t0, t1 = source.time
    starts = phase_starts(source.metadata, source.output_mask()) if opts.phase_marker else ()
    return tuple(sorted(m for m in {*opts.markers, *starts} if t0 < m < t1))


def limits(kind_scale: str, override, lo: float, hi: float) -> tuple[float, float]:
    """Colour limits: fixed 0:1 for probabilities, symmetric about 0 for signed values, the data's
    own range otherwise (0:1 when it lies inside); either end of ``override`` wins."""
    if kind_scale == "probability":
        a, b = 0.0, 1.0
    elif kind_scale == "signed":
        m = max(abs(lo), abs(hi)) or 1.0
        a, b = -m, m
    else:
        a, b = (0.0, 1.0) if lo >= 0 and hi <= 1 else (lo, hi)
    o_lo, o_hi = override or (None, None)
    a, b = (a if o_lo is None else float(o_lo)), (b if o_hi is None else float(o_hi))
    return (a, b) if b > a else (a, a + 1.0)


def used_band(peaks: np.ndarray, circular: bool = True) -> tuple[int, int] | None:
    """The rows [y0, y1) to draw for per-location peak weights ``peaks`` (N,): the shortest circular
    run holding every location in use, plus a margin, so that what is in use fills at least half of
    the rows. Runs of 8 or more are widened to multiples of 4, so that traces of one kind share
    ticks (and frames). y1 may exceed N when the run wraps; None: draw every location. Not
    ``circular`` (a DNC's memory): the run from the lowest location in use to the highest, never wrapped."""
    N = peaks.size
    used = np.flatnonzero(peaks > USED)
    if used.size == 0:
        return None
    gaps = np.diff(np.append(used, used[0] + N))  # gap after each used location, circularly
    i = int(np.argmax(gaps)) if circular else used.size - 1
    start = int(used[(i + 1) % used.size])
    length = N - int(gaps[i]) + 1
    if length >= 8:
        y0, y1 = start - length // 8, start + length + length // 8
        y0, y1 = y0 - y0 % BAND_STEP, y1 + (-y1) % BAND_STEP
    else:
        y0, y1 = start - length // 4, start + length + length // 4
    if start + length <= N:  # no wrap: keep the margins inside 0..N
        y0, y1 = max(0, y0), min(N, y1)
    elif y0 < 0:
        y0, y1 = y0 + N, y1 + N
    return (y0, y1) if y1 - y0 < N else None


def whole_memory(peaks: np.ndarray, dwell: np.ndarray) -> tuple[int, int]:
    """Rows [y0, y0 + N) drawing every location, rolled so that the heads' walk stays in one piece
    and no focus sits on the panel's top or bottom edge: the memory is cut open in the middle of the
    longest stretch of locations not in use when it is CUT or more long, else in the middle of the
    CUT locations where the heads spend least time (``dwell``: weight summed over time). Not rolled
    when nothing is focused, or when the stretch around the end of memory is unused already."""
    N = peaks.size
    unused = peaks <= USED
    if unused.all() or (unused[-EDGE:].all() and unused[:EDGE].all()) or N <= CUT:
        return (0, N)
    used = np.flatnonzero(~unused)
    gaps = np.diff(np.append(used, used[0] + N)) - 1  # unused locations after each used one, circularly
    i = int(np.argmax(gaps))
    if gaps[i] >= CUT:
        middle = int(used[i]) + 1 + int(gaps[i]) // 2
    else:
        window = np.convolve(np.append(dwell, dwell[: CUT - 1]), np.ones(CUT), "valid")  # from each location on
        middle = int(np.argmin(window)) + CUT // 2
    y0 = BAND_STEP * round(middle / BAND_STEP) % N
    return (y0, y0 + N)


def memory_rows(peaks: np.ndarray, dwell: np.ndarray, locations: str, circular: bool = True) -> tuple[int, int]:
    """The weighting rows to draw for ``--locations auto`` (the crop of used_band, else the whole
    memory) or ``all`` (the whole memory), rolled as whole_memory says when the memory is ``circular``
    (an NTM's; a DNC's is drawn in index order, 0 at the bottom)."""
    band = used_band(peaks, circular) if locations == "auto" else None
    return band or (whole_memory(peaks, dwell) if circular else (0, peaks.size))


# --------------------------------------------------------------------- scene


def build_scene(source, opts: PlotOptions, band=None, page: bool = False, by_task: bool = True) -> Scene:
    """Read, window, reduce, crop and mask every panel of a trace: the figure, decided.

    ``band`` imposes the location rows to draw (an animation's frames share one): (y0, y1) in index
    order, or rows.Rows; by default ``opts.locations`` and ``opts.order`` decide. ``page``: also
    what the interactive page adds, the figure with its locations in the other order
    (``Scene.alternate``) and the trace's link matrices (``Scene.links``). ``by_task``: layout paper
    draws the paper's figure of the trace's task (paper.py: ngrams, priority-sort); False, the 3x2 grid
    for every task (what several traces on one view share: a comparison, an animation)."""
    from .paper import task_figure

    own = task_figure(source.metadata, opts) if by_task else None
    if opts.layout == "addressing":  # one head's stages: a figure of its own
        from .anatomy import build_anatomy

        scene = build_anatomy(source, opts, band)
    elif opts.layout == "dnc":  # the DNC's memory: a figure of its own
        from .dnc import build_dnc

        scene = build_dnc(source, opts, band)
    elif own is not None:  # the paper's figure of this task
        scene = own(source, opts, band)
    else:
        scene = _build_grid(source, opts, band)
    if page and band is None and any(p.of_locations for p in scene.panels):
        from dataclasses import replace

        other = replace(opts, order="index" if opts.order == "written" else "written")
        scene.alternate = build_scene(source, other, by_task=by_task)  # (the Source keeps the cells it has read)
        if "link_matrices" in source.shapes:
            from .dnc import link_cells

            scene.links = link_cells(source, scene)
    return scene


def _build_grid(source, opts: PlotOptions, band=None) -> Scene:
    """The Scene of layouts grid and paper, and of --panels."""
    panels, grid, warnings = plan_panels(source.shapes, opts, source.error)
    suptitle = title_text(source.metadata, source.name, opts)
    figsize = opts.figsize or default_figsize(grid, opts, suptitle is not None)
    check_pixels(figsize, opts.dpi)  # many heads grow the grid
    rects = axes_rects(grid, figsize, opts, suptitle is not None)
    t0, t1 = source.time
    whole_mask = source.output_mask()
    mask = None if whole_mask is None else whole_mask[t0:t1]
    markers = time_markers(source, opts)

    cells = {}
    for p, rect in zip(panels, rects, strict=False):
        if p.present:
            cells[p] = source.cells(p.key, p.head, *pixel_size(rect, figsize, opts.dpi), opts.reduce)
    N = source.locations
    weightings = [c[0] if c[3] is None else np.where(np.isfinite(c[0]), c[0], 0.0)  # the crop: a NaN or
                  for p, c in cells.items() if p.key in WEIGHTING_PANELS]                # infinity weighs as 0
    peaks = dwell = None
    if weightings and all(w.shape[1] == N for w in weightings) and not source.columns:
        peaks = np.max([w.max(axis=0) for w in weightings], axis=0)
        dwell = np.sum([w.sum(axis=0) for w in weightings], axis=0)
    arranged = None
    if any(p.key in LOCATION_PANELS for p in cells):
        arranged, more = arrange(source, opts, peaks, dwell, band)
        warnings += more

    grids = []
    for p, rect in zip(panels, rects, strict=False):
        kind = PANELS[p.key]
        if not p.present:
            grids.append(PanelGrid(p, kind.rows, None, time=(t0, t1)))
            continue
        values, lo, hi, bad = cells[p]
        if bad is not None:
            warnings.append(str(source.error(f"{bad.first}; {bad.count:,} value{'s' if bad.count > 1 else ''} NaN "
                                             f"or infinite in all, drawn in {NONFINITE_NAME}", p.key)))
        rows, modulo, ylabel, row_ticks, locations = (0, source.shapes[p.key][-1]), None, kind.rows, None, None
        width, height = pixel_size(rect, figsize, opts.dpi)
        if p.key in LOCATION_PANELS:
            values, rows, modulo, ylabel = arranged.take(values), arranged.span, arranged.modulo, arranged.label()
            row_ticks, locations = arranged.ticks(height, opts), arranged.locations
        reduced = (t1 - t0 > width, rows[1] - rows[0] > height)
        values = reduce_axis(values, height, 1, opts.reduce, finite=bad is None)
        raw = values
        if opts.reduce == "max":
            for axis in (0, 1):
                if reduced[axis]:
                    values = spread(values, axis, finite=bad is None)
        unscored = None
        if mask is not None and p.key in MASKED_PANELS:
            scored = reduce_axis(mask[:, None].astype(np.float64), width, 0, "max")[:, 0] > 0
            unscored = ~scored
        vmin, vmax = limits(kind.scale, opts.limits.get(p.key), lo, hi)
        grids.append(PanelGrid(p, ylabel, values, vmin, vmax, unscored, (t0, t1), rows, modulo, raw,
                               None if bad is None else nonfinite_label(values), locations, row_ticks))
    return Scene(opts, grid, figsize, suptitle, grids, markers, warnings, peaks, dwell, dict(source.metadata))

