"""One head's addressing, stage by stage: ``--layout addressing``.

An NTM head makes its weighting in four stages (Graves et al. 2014, section 3.3; attnviz.trainer.ntm.addressing):
the content weighting w_c = softmax(beta * cosine(key, memory rows)), the interpolation with the head's
last weighting by the gate g, the circular shift by the distribution s over offsets -R..R, and the
sharpening by gamma. The figure draws, one above the other on one time axis, the four weightings
(content, after interpolation, after the shift, final) as Time x Location heatmaps on one crop, then
g, beta and gamma as bars, and s as a Time x Offset heatmap; a stage the trace did not record is
drawn empty, "not recorded" (the datasets are those of docs/trace-format.md).

    build_anatomy(source, opts)   the Scene: every panel read, windowed, reduced and cropped as
                                  plan.build_scene reads the other layouts' panels
    AnatomyScene                  its panels' rectangles, and for the interactive page, each step's
                                  g, beta, gamma, s and content peak (the readout)

Both back ends paint it as they paint any Scene: the bars are cells too (a strip's cells are the
pixels under or over each step's value), so the PNG is painted into a cached frame like the others.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

import numpy as np

from ..errors import OptionError
from ..trace import stage_name
from .colors import SEQUENTIAL, nonfinite_label
from .options import PlotOptions, check_pixels
from .plan import (
    NICE,
    TITLE_ROOM,
    PanelGrid,
    PanelPlan,
    Scene,
    Ticks,
    limits,
    pixel_size,
    time_markers,
    title_text,
)
from .reduce import reduce_axis, reduce_stream, spread
from .rows import arrange

WEIGHTINGS = (("content_weightings", "Content weighting"), ("gated_weightings", "After interpolation (gate)"),
              ("shifted_weightings", "After shift"), (None, "Final (after sharpening)"))  # None: the K_weightings
# The bar strips: stage, title, y label, the axis's bottom, and its top (None: a round number above the data).
SCALARS = (("gates", "Gate g", "g", 0.0, 1.0), ("key_strengths", "Key strength \u03b2", "\u03b2", 0.0, None),
           ("sharpenings", "Sharpening \u03b3", "\u03b3", 1.0, None))
SHIFTS = ("shifts", "Shift distribution s")
READOUT = {"gates": "gate", "key_strengths": "key strength", "sharpenings": "sharpening"}  # the page's words
# Panel heights in inches at font size 10: four weightings, three bar strips, the shifts.
HEIGHTS = (1.15,) * 4 + (0.5,) * 3 + (0.75,)
WIDTH = 7.0  # inches at font size 10, without a colour bar
GAP = 0.55  # inches at font size 10 between panels: the tick labels above, the title below
MARGINS = {"left": 0.75, "right": 0.2, "top": 0.35, "bottom": 0.55}  # as plan.axes_rects has them
BARS = "Blues"  # bar strips: the ground is its 0 (near white), a bar its BAR_VALUE
BAR_VALUE = 0.8
INK = "#4d4d4d"  # a strip's markers: white would vanish on its light ground


@dataclass
class StageGrid(PanelGrid):
    """A panel of the anatomy: a PanelGrid with its own x label (only the bottom panel says "Time")."""

    xlabel: str = ""
    ink: str | None = None  # the markers' colour; None: white, as on every heatmap
    time_labels: bool = True  # False: the time ticks go unlabelled (a thin panel of a stack)


@dataclass
class StripGrid(StageGrid):
    """A bar strip: one value per column (``series``), drawn as cells filled up to it on an axis from
    ``axis[0]`` to ``axis[1]`` over the strip's pixel rows; ``data`` is the values' own range."""

    series: np.ndarray | None = None
    name: str = ""  # the title without the values' range
    axis: tuple[float, float] = (0.0, 1.0)
    data: tuple[float, float] = (0.0, 1.0)
    has_colorbar = False  # (a class attribute: a bar strip has its own value axis)

    @property
    def yticks(self) -> Ticks:
        """The axis's bottom and top, in row coordinates (row r spans r - 0.5 to r + 0.5)."""
        (a, b), rows = self.axis, self.rows[1] - self.rows[0]
        return Ticks(tuple((v - a) / (b - a) * rows - 0.5 for v in (a, b)), (_number(a), _number(b)))


@dataclass
class AnatomyScene(Scene):
    """One head's anatomy: the panels one above the other, each in its own rectangle (``boxes``), and
    ``readout``: per column, the values the interactive page reads out for a step."""

    boxes: list = field(default_factory=list)
    head: tuple[str, int] = ("read", 0)
    readout: dict = field(default_factory=dict)

    def rects(self):
        return self.boxes

    def frame_key(self) -> tuple:
        return super().frame_key() + (tuple(self.boxes), tuple((p.xlabel, p.ink, p.yticks) for p in self.panels))

    def page_extras(self, payload: dict) -> None:
        """What the page adds to a Scene's: each panel's bar values, and the readout of each step."""
        for p, entry in zip(self.panels, payload["panels"], strict=True):
            entry["ink"] = p.ink
            if isinstance(p, StripGrid):
                entry["fixed"] = True  # no zooming of a value axis
                if p.series is not None:
                    entry.update(series=_b64(p.series.astype("<f4")), name=p.name)
        payload["steps"] = self.readout


def _b64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array).tobytes()).decode("ascii")


def _number(v: float) -> str:
    return f"{v:.3g}"


def nice_above(v: float) -> float:
    """The smallest of 1, 2, 2.5, 5 times a power of ten (NICE's steps) that is at least v > 0."""
    scale = 10.0 ** np.floor(np.log10(v)) / 10
    return float(next(n * scale for n in (*NICE, 100) if n * scale >= v * (1 - 1e-12)))


# ------------------------------------------------------------------ geometry


def anatomy_figsize(opts: PlotOptions, titled: bool) -> tuple[float, float]:
    """Inches: WIDTH wide, the panels' HEIGHTS and GAPs high, growing with the font and colour bar."""
    s = opts.fontsize / 10
    bar = 0.55 * s if opts.colorbar else 0.0
    m = MARGINS
    height = m["top"] + (TITLE_ROOM if titled else 0) + sum(HEIGHTS) + GAP * (len(HEIGHTS) - 1) + m["bottom"]
    return WIDTH * s + bar, height * s


def anatomy_rects(figsize, opts: PlotOptions, titled: bool) -> list[tuple[float, float, float, float]]:
    """Each panel's (left, bottom, width, height) in figure fractions, from the top: margins and gaps
    fixed in inches, the panels' heights in the proportions of HEIGHTS."""
    W, H = figsize
    s = opts.fontsize / 10
    m = {k: v * s for k, v in MARGINS.items()}
    bar = 0.55 * s if opts.colorbar else 0.0
    top = m["top"] + (TITLE_ROOM * s if titled else 0)
    width = W - m["left"] - m["right"] - bar
    scale = (H - top - m["bottom"] - GAP * s * (len(HEIGHTS) - 1)) / sum(HEIGHTS)
    if width <= 0 or scale <= 0:
        raise OptionError(f"figure of {W:g}x{H:g} inches leaves no room for the {len(HEIGHTS)} panels of layout "
                          "addressing; enlarge --figsize or lower --fontsize")
    out, y = [], H - top
    for h in HEIGHTS:
        y -= h * scale
        out.append((m["left"] / W, y / H, width / W, h * scale / H))
        y -= GAP * s
    return out


# --------------------------------------------------------------------- scene


def _heads(shape) -> int:
    return shape[1] if len(shape) == 3 else 1


def _check_stages(source, kind: str, heads: int) -> None:
    """A stage whose shape does not fit the head kind's weightings is refused in one line."""
    N = source.shapes[f"{kind}_weightings"][-1]
    for stage in (s for s, *_ in (*WEIGHTINGS[:3], *SCALARS, SHIFTS)):
        key = stage_name(kind, stage)
        shape = source.shapes.get(key)
        if shape is None:
            continue
        per_head = stage not in ("key_strengths", "gates", "sharpenings")  # a vector per head, not a number
        has = (shape[1] if len(shape) == 3 else 1) if per_head else (shape[1] if len(shape) == 2 else 1)
        if has != heads:
            raise source.error(f"has {has} head(s) but {kind}_weightings has {heads}", key)
        if stage.endswith("weightings") and shape[-1] != N:
            raise source.error(f"has N = {shape[-1]} but {kind}_weightings has N = {N}", key)
        if stage == "shifts" and shape[-1] % 2 == 0:
            raise source.error(f"has {shape[-1]} shift offsets; a distribution over -R..R has an odd number", key)


def _series(source, key: str, head: int, width: int, how: str) -> tuple[np.ndarray, float, float]:
    """A per-head number over the time window, reduced to at most ``width`` columns: (values, min, max)."""
    t0 = source.time[0]
    shape = source.shapes[key]
    value = source.reader.constant(source.name, key)
    if value is not None:  # nothing stored: every step holds the fill value
        v = float(value)
        return np.full(min(shape[0], width), v), v, v
    source.reader.check_scan(source.name, key, shape, source.dtypes[key], "drawing")

    def read(a, b):
        block = np.asarray(source.reader.read(source.name, key, slice(t0 + a, t0 + b)))
        return (block[:, head] if block.ndim == 2 else block)[:, None]

    try:
        row_bytes = source.dtypes[key].itemsize * int(np.prod(shape[1:], dtype=np.int64))
        cells, lo, hi = reduce_stream(read, shape[0], width, how, row_bytes,
                                      align=source.reader.chunk_rows(source.name, key))
    except ValueError as e:
        raise source.error(str(e), key) from None
    return cells[:, 0], lo, hi


def _title(source, opts: PlotOptions, kind: str, head: int) -> str | None:
    """"Addressing of read head 0", then what a figure of the trace is titled with."""
    if isinstance(opts.title, str) or not opts.title:
        return title_text(source.metadata, source.name, opts)
    rest = title_text(source.metadata, source.name, opts)
    return f"Addressing of {kind} head {head}" + (f" \u00b7 {rest}" if rest else "")


def build_anatomy(source, opts: PlotOptions, band: tuple[int, int] | None = None) -> AnatomyScene:
    """The Scene of one head's addressing stages (``opts.addressed_head``): see the module's docstring.
    ``band`` imposes the weighting rows to draw. A head the trace does not have is an OptionError;
    stages not recorded are drawn empty and named in one warning."""
    kind, head = opts.addressed_head
    final = f"{kind}_weightings"
    heads = _heads(source.shapes[final])
    if head >= heads:
        has = f"{heads} {kind} heads, 0 to {heads - 1}" if heads > 1 else f"1 {kind} head, head 0"
        raise OptionError(str(source.error(f"{kind} head {head} does not exist; it has {has}", final)))
    _check_stages(source, kind, heads)
    suptitle = _title(source, opts, kind, head)
    figsize = opts.figsize or anatomy_figsize(opts, suptitle is not None)
    check_pixels(figsize, opts.dpi)
    rects = anatomy_rects(figsize, opts, suptitle is not None)
    sizes = [pixel_size(r, figsize, opts.dpi) for r in rects]
    t0, t1 = source.time
    markers = time_markers(source, opts)

    readout: dict = {"head": f"{kind} head {head}", "time": [t0, t1], "reduce": opts.reduce,
                     "cols": int(min(t1 - t0, sizes[0][0]))}  # every panel has the same columns
    panels, peaks, dwell, warnings = _weighting_panels(source, opts, kind, head, sizes[:4], band, readout)
    panels += [_strip(source, opts, kind, head, scalar, size, readout) for scalar, size in zip(SCALARS, sizes[4:7],
                                                                                              strict=True)]
    panels.append(_shift_panel(source, opts, kind, head, sizes[7], readout))
    [p for p in panels if p.values is not None][-1].xlabel = "Time"  # under the lowest panel drawn

    missing = [stage_name(kind, s) for s, *_ in (*WEIGHTINGS[:3], *SCALARS, SHIFTS)
               if stage_name(kind, s) not in source.shapes]
    if len(missing) == len(WEIGHTINGS) - 1 + len(SCALARS) + 1:
        warnings.append(str(source.error(f"records no addressing stages of the {kind} heads; only their final "
                                         "weighting is drawn")))
    elif missing:
        warnings.append(str(source.error(f"{', '.join(missing)}: not recorded; their panels are left empty")))
    return AnatomyScene(opts, (len(panels), 1), figsize, suptitle, panels, markers, warnings, peaks, dwell,
                        dict(source.metadata), boxes=rects, head=(kind, head), readout=readout)


def _weighting_panels(source, opts: PlotOptions, kind: str, head: int, sizes, band, readout: dict):
    """The four weightings' panels, on one crop (``band``, else the one holding what any of them
    uses); their peaks and dwell over the memory; the content weighting's peak per column into
    ``readout``."""
    t0, t1 = source.time
    N = source.locations
    final = f"{kind}_weightings"
    keys = [stage_name(kind, s) if s else final for s, _ in WEIGHTINGS]
    cells = {k: source.cells(k, head, *size, opts.reduce) for k, size in zip(keys, sizes, strict=True)
             if k in source.shapes}
    whole = [v for v, *_ in cells.values() if v.shape[1] == N] if not source.columns else []
    peaks = dwell = None
    if whole:  # (values that are not numbers count as unused)
        peaks = np.max([np.where(np.isfinite(v), v, -np.inf).max(axis=0) for v in whole], axis=0)
        dwell = np.sum([np.where(np.isfinite(v), v, 0.0).sum(axis=0) for v in whole], axis=0)
    arranged, warnings = arrange(source, opts, peaks, dwell, band)
    cmap = opts.panel_cmaps.get(final) or opts.cmap or SEQUENTIAL
    panels = []
    for (_, title), key, size in zip(WEIGHTINGS, keys, sizes, strict=True):
        plan = PanelPlan(key, head, title, cmap, present=key in cells)
        if key not in cells:
            panels.append(StageGrid(plan, "Location", None, time=(t0, t1)))
            continue
        values, lo, hi, bad = cells[key]
        rows = arranged.span
        values, raw = _reduced(arranged.take(values), size, (t1 - t0, rows[1] - rows[0]), opts.reduce)
        vmin, vmax = limits("probability", opts.limits.get(final), lo, hi)
        panels.append(StageGrid(plan, arranged.label(), values, vmin, vmax, None, (t0, t1), rows, arranged.modulo,
                                raw, None if bad is None else nonfinite_label(values), arranged.locations,
                                arranged.ticks(size[1], opts)))
    readout["peak"] = None
    content = keys[0]
    if content in cells and cells[content][0].shape[1] == source.shapes[content][-1]:  # rows not reduced
        values = np.where(np.isfinite(cells[content][0]), cells[content][0], -np.inf)
        at = values.argmax(axis=1)
        peak = values[np.arange(len(at)), at]
        location = np.where(np.isfinite(peak), (at + (source.columns[0] if source.columns else 0)) % N, -1)
        readout.update(peak=_b64(location.astype("<i4")), peak_value=_b64(peak.astype("<f4")))
    return panels, peaks, dwell, warnings


def _strip(source, opts: PlotOptions, kind: str, head: int, scalar, size, readout: dict) -> StripGrid:
    """A bar strip of one of SCALARS; its values per column into ``readout``."""
    stage, title, symbol, bottom, top = scalar
    t0, t1 = source.time
    key = stage_name(kind, stage)
    readout[READOUT[stage]] = None
    if key not in source.shapes:
        return StripGrid(PanelPlan(key, head, title, BARS, present=False), symbol, None, time=(t0, t1), ink=INK)
    series, lo, hi = _series(source, key, head, size[0], opts.reduce)
    axis = _axis(lo, hi, bottom, top)
    levels = axis[0] + (np.arange(size[1]) + 0.5) / size[1] * (axis[1] - axis[0])  # each pixel row's value
    fill = np.where(series[:, None] >= levels[None, :], BAR_VALUE, 0.0)
    fill[~np.isfinite(series)] = np.nan  # drawn in the colour of values that are not numbers
    span = f"{_number(lo)} throughout" if lo == hi else f"{_number(lo)} to {_number(hi)}"
    readout[READOUT[stage]] = _b64(series.astype("<f4"))
    return StripGrid(PanelPlan(key, head, f"{title} ({span})", BARS), symbol, fill, 0.0, 1.0, None, (t0, t1),
                     (0, size[1]), None, fill, ink=INK, series=series, name=title, axis=axis, data=(lo, hi))


def _shift_panel(source, opts: PlotOptions, kind: str, head: int, size, readout: dict) -> StageGrid:
    """The shift distribution as a Time x Offset heatmap (rows -R..R); its values into ``readout``."""
    t0, t1 = source.time
    key = stage_name(kind, SHIFTS[0])
    plan = PanelPlan(key, head, SHIFTS[1], opts.cmap or SEQUENTIAL, present=key in source.shapes)
    readout["shift"] = None
    if key not in source.shapes:
        return StageGrid(plan, "Offset", None, time=(t0, t1))
    values, lo, hi, bad = source.cells(key, head, *size, opts.reduce)
    R = (values.shape[1] - 1) // 2
    values, raw = _reduced(values, size, (t1 - t0, 2 * R + 1), opts.reduce)
    readout.update(shift=_b64(raw.astype("<f4")), offsets=list(range(-R, R + 1)))
    return StageGrid(plan, "Offset", values, *limits("probability", None, lo, hi), None, (t0, t1), (-R, R + 1), None,
                     raw, None if bad is None else nonfinite_label(values))


def _reduced(values: np.ndarray, size, extent, how: str) -> tuple[np.ndarray, np.ndarray]:
    """Cells of at most one per pixel: rows reduced to the panel's height; after a max reduction
    each maximum spread to its neighbours (plan.build_scene's rule). Returns (drawn, what each
    stands for)."""
    width, height = size
    values = reduce_axis(values, height, 1, how)
    raw = values
    if how == "max":
        for axis, n in enumerate(extent):
            if n > size[axis]:
                values = spread(values, axis)
    return values, raw


def _axis(lo: float, hi: float, bottom: float, top: float | None) -> tuple[float, float]:
    """A bar strip's axis: from ``bottom`` (lower if the data go below) to ``top``, or a round number
    at or above the data's maximum."""
    if np.isfinite(lo) and lo < bottom:
        bottom = -nice_above(-lo) if lo < 0 else 0.0
    if top is None or (np.isfinite(hi) and hi > top):
        top = nice_above(hi) if np.isfinite(hi) and hi > max(bottom, 0) else bottom + 1.0
    return float(bottom), float(top)
