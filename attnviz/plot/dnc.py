"""The DNC's memory at work: ``--layout dnc``, after Extended Data Figure 1 of Graves et al. (2016).

A Differentiable Neural Computer writes where its allocation weighting points (the free locations,
by usage) or where a content lookup matches, gated by its write gate and allocation gate; it frees
what its read heads have read, by their free gates; and each read head mixes a content lookup with
a walk backward or forward along the temporal link matrix, by its read modes. The figure draws, one
panel above the other on one time axis (a step is in the same column in every panel; the dashed
phase marker runs through all of them):

    Inputs, Outputs
    Write Weightings (a panel per write head), Read Weightings (one per read head)    one crop
    Write gate, Allocation gate (a strip per write head), Free gate (one per read head)
    Read modes (one per read head): rows backward (one per write head), content, forward
    Usage: Time x Location, on the weightings' crop

Strips are one row of cells, on the 0:1 scale of the weightings. A dataset the trace did not record
(an NTM's trace records none of the DNC's) is an empty panel titled "(not recorded)", named in one
warning. ``--order written`` sorts the rows of the weightings and usage alike (rows.py).

    build_dnc(source, opts)    the Scene (DncScene), read, windowed and reduced as plan.build_scene
                               reads the grid's panels
    link_cells(source, scene)  for the interactive page: the link matrix at each column's step, over
                               the locations the figure draws (in either order)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import OptionError
from .anatomy import StageGrid, _b64, _reduced, _series
from .colors import DIVERGING, SEQUENTIAL, nonfinite_label
from .options import PANELS, PlotOptions, check_pixels
from .plan import TITLE_ROOM, PanelPlan, Scene, Ticks, limits, pixel_size, time_markers, title_text
from .reduce import pixel_bins, reduce_axis, spread
from .rows import arrange

# Panel heights in inches at font size 10.
HEIGHT = {"inputs": 0.85, "outputs": 0.75, "weightings": 1.3, "strip": 0.17, "mode": 0.12, "usage": 1.3}
WIDTH = 7.0  # inches at font size 10, without a colour bar
TITLE = 0.3  # inches at font size 10 above each panel, for its title
BELOW = {True: 0.25, False: 0.07}  # inches below a panel with time tick labels, and below one without
MARGINS = {"left": 1.0, "right": 0.2, "top": 0.05, "bottom": 0.55}  # left: room for the read modes' names
STRIPS = (("dnc_write_gates", "Write gate", "write"), ("allocation_gates", "Allocation gate", "write"),
          ("free_gates", "Free gate", "read"))
DNC_DATASETS = ("dnc_write_gates", "allocation_gates", "free_gates", "read_modes", "usage")  # what the layout adds
LINK_CELLS = 4_000_000  # the page embeds the link matrices when columns x heads x locations^2 is at most this
LINK_READ = 256 * 2**20  # ... and reading them takes at most this many bytes


@dataclass
class DncScene(Scene):
    """The DNC layout: the panels one above the other, each in its own rectangle (``boxes``)."""

    boxes: list = field(default_factory=list)

    def rects(self):
        return self.boxes

    def frame_key(self) -> tuple:
        return super().frame_key() + (tuple(self.boxes), tuple((p.xlabel, p.time_labels, p.yticks)
                                                                for p in self.panels))

    def page_extras(self, payload: dict) -> None:
        """What the page adds to a Scene's: each strip's values (its readout), and no row zoom on a strip
        or the read modes."""
        for p, entry in zip(self.panels, payload["panels"], strict=True):
            if isinstance(p, GateStrip) or p.row_names:
                entry["fixed"] = True
            if isinstance(p, GateStrip) and p.series is not None:
                entry.update(series=_b64(p.series.astype("<f4")), name=p.name)


@dataclass
class GateStrip(StageGrid):
    """A gate as one row of cells over time; ``series``: its value at each column (for the page)."""

    series: np.ndarray | None = None
    name: str = ""
    has_colorbar = False  # (a class attribute: no colour bar beside a strip one cell high)


# ------------------------------------------------------------------ geometry


def _heights(W: int, R: int) -> list[tuple[float, bool]]:
    """Each panel's height (inches at font size 10) and whether time tick labels go below it, from the top."""
    out = [(HEIGHT["inputs"], True), (HEIGHT["outputs"], True)]
    out += [(HEIGHT["weightings"], True)] * (W + R)
    out += [(HEIGHT["strip"], False)] * (2 * W + R)
    out += [(max(HEIGHT["mode"] * (2 * W + 1), 3 * HEIGHT["mode"]), False)] * R
    out.append((HEIGHT["usage"], True))
    return out


def dnc_figsize(opts: PlotOptions, titled: bool, W: int, R: int) -> tuple[float, float]:
    """Inches: WIDTH wide, the panels, their titles and the gaps below them high; growing with the font
    and a colour bar."""
    s = opts.fontsize / 10
    bar = 0.55 * s if opts.colorbar else 0.0
    heights = _heights(W, R)
    height = (MARGINS["top"] + (TITLE_ROOM if titled else 0) + sum(h + TITLE for h, _ in heights)
              + sum(BELOW[t] for _, t in heights[:-1]) + MARGINS["bottom"])
    return WIDTH * s + bar, height * s


def dnc_rects(figsize, opts: PlotOptions, titled: bool, W: int, R: int) -> list[tuple[float, float, float, float]]:
    """Each panel's (left, bottom, width, height) in figure fractions, from the top: titles, gaps and
    margins fixed in inches, the panels' heights in the proportions of _heights."""
    Wd, H = figsize
    s = opts.fontsize / 10
    heights = _heights(W, R)
    m = {k: v * s for k, v in MARGINS.items()}
    bar = 0.55 * s if opts.colorbar else 0.0
    top = m["top"] + (TITLE_ROOM * s if titled else 0)
    width = Wd - m["left"] - m["right"] - bar
    fixed = top + m["bottom"] + s * (TITLE * len(heights) + sum(BELOW[t] for _, t in heights[:-1]))
    scale = (H - fixed) / sum(h for h, _ in heights)
    if width <= 0 or scale <= 0:
        raise OptionError(f"figure of {Wd:g}x{H:g} inches leaves no room for the {len(heights)} panels of layout "
                          "dnc; enlarge --figsize or lower --fontsize")
    out, y = [], H - top
    for h, ticks in heights:
        y -= TITLE * s + h * scale
        out.append((m["left"] / Wd, y / H, width / Wd, h * scale / H))
        y -= BELOW[ticks] * s
    return out


# --------------------------------------------------------------------- scene


def _heads(shape) -> int:
    return shape[1] if len(shape) == 3 else 1


def mode_names(W: int) -> tuple[str, ...]:
    """The read modes' names in the trace format's order: backward (one per write head), content,
    forward (one per write head)."""
    if W == 1:
        return ("backward", "content", "forward")
    return tuple(f"backward {h}" for h in range(W)) + ("content",) + tuple(f"forward {h}" for h in range(W))


def build_dnc(source, opts: PlotOptions, band=None) -> DncScene:
    """The Scene of the DNC layout (see the module's docstring). ``band`` imposes the location rows."""
    W, R = _heads(source.shapes["write_weightings"]), _heads(source.shapes["read_weightings"])
    suptitle = title_text(source.metadata, source.name, opts)
    figsize = opts.figsize or dnc_figsize(opts, suptitle is not None, W, R)
    check_pixels(figsize, opts.dpi)
    rects = dnc_rects(figsize, opts, suptitle is not None, W, R)
    sizes = iter([pixel_size(r, figsize, opts.dpi) for r in rects])
    t0, t1 = source.time
    whole_mask = source.output_mask()
    markers = time_markers(source, opts)
    mask = None if whole_mask is None else whole_mask[t0:t1]
    warnings: list[str] = []

    def heatmap(key, head, title, size, rows=None, row_names=None):
        """A Time x rows panel of ``key`` (head ``head``); ``rows``: the location rows (rows.Rows)."""
        kind = PANELS.get(key)
        cmap = opts.panel_cmaps.get(key) or opts.cmap or (DIVERGING if kind and kind.scale == "signed"
                                                             else SEQUENTIAL)
        plan = PanelPlan(key, head, title, cmap, present=key in source.shapes)
        ylabel = rows.label() if rows is not None else (kind.rows if kind else "Mode")
        if not plan.present:
            return StageGrid(plan, ylabel, None, time=(t0, t1))
        values, lo, hi, bad = source.cells(key, head, *size, opts.reduce)
        if bad is not None:
            warnings.append(str(source.error(f"{bad.first}; {bad.count:,} value{'s' if bad.count > 1 else ''} NaN "
                                             f"or infinite in all, drawn in bright green", key)))
        span, modulo, locations, ticks = (0, values.shape[1]), None, None, None
        if rows is not None:
            values, span, modulo, locations = rows.take(values), rows.span, rows.modulo, rows.locations
            ticks = rows.ticks(size[1], opts)
        if row_names is not None:
            ticks = Ticks(tuple(range(len(row_names))), row_names, (1,))
        values, raw = _reduced(values, size, (t1 - t0, span[1] - span[0]), opts.reduce)
        unscored = None
        if mask is not None and key == "outputs":
            unscored = ~(reduce_axis(mask[:, None].astype(np.float64), size[0], 0, "max")[:, 0] > 0)
        vmin, vmax = limits(kind.scale if kind else "probability", opts.limits.get(key), lo, hi)
        return StageGrid(plan, ylabel, values, vmin, vmax, unscored, (t0, t1), span, modulo, raw,
                         None if bad is None else nonfinite_label(values), locations, ticks, row_names)

    def strip(key, title, head, heads, size):
        """One row of cells: a gate (of head ``head`` of ``heads``) over time."""
        plan = PanelPlan(key, head, title, opts.cmap or SEQUENTIAL, present=key in source.shapes)
        if not plan.present:
            return GateStrip(plan, "", None, time=(t0, t1), row_ticks=Ticks())
        series, _, _ = _series(source, key, head if heads > 1 or len(source.shapes[key]) == 2 else None, size[0],
                               opts.reduce)
        if not np.isfinite(series).all():
            warnings.append(_nonfinite_warning(source, key, head if len(source.shapes[key]) == 2 else None))
        raw = series[:, None].astype(np.float64)
        values = spread(raw, 0) if opts.reduce == "max" and t1 - t0 > size[0] else raw  # (as a heatmap's maxima)
        return GateStrip(plan, "", values, 0.0, 1.0, None, (t0, t1), (0, 1), None, raw,
                         nonfinite_label(values), row_ticks=Ticks(), series=series, name=title)

    # The crop: what the write and read weightings use (rows.arrange, as for the grid).
    panel_sizes = [pixel_size(r, figsize, opts.dpi) for r in rects]
    weight_size = panel_sizes[2]
    def head_of(key, h):  # the head index of a per-head dataset; None for one stored without a heads axis
        return h if len(source.shapes[key]) == 3 else None

    cells = [source.cells(k, head_of(k, h), *weight_size, opts.reduce)
             for k, n in (("write_weightings", W), ("read_weightings", R)) for h in range(n)]
    N = source.locations
    whole = [np.where(np.isfinite(c[0]), c[0], 0.0) for c in cells]
    peaks = dwell = None
    if all(w.shape[1] == N for w in whole) and not source.columns:
        peaks, dwell = np.max([w.max(axis=0) for w in whole], axis=0), np.sum([w.sum(axis=0) for w in whole], axis=0)
    rows, more = arrange(source, opts, peaks, dwell, band)
    warnings += more

    panels = [heatmap("inputs", None, "Inputs", next(sizes)), heatmap("outputs", None, "Outputs", next(sizes))]
    for key, title, n in (("write_weightings", "Write Weightings", W), ("read_weightings", "Read Weightings", R)):
        for h in range(n):
            panels.append(heatmap(key, head_of(key, h), title + (f" (head {h})" if n > 1 else ""), next(sizes),
                                  rows))
    for key, title, kind in STRIPS:
        n = W if kind == "write" else R
        for h in range(n):
            named = f" ({'read ' if kind == 'read' else ''}head {h})" if n > 1 else ""
            panels.append(strip(key, title + named, h, n, next(sizes)))
    for h in range(R):
        panels.append(heatmap("read_modes", h if len(source.shapes.get("read_modes", ())) == 3 else None,
                              "Read modes" + (f" (read head {h})" if R > 1 else ""), next(sizes),
                              row_names=mode_names(W)))
    panels.append(heatmap("usage", None, "Usage", next(sizes), rows))
    panels[-1].xlabel = "Time"  # the lowest panel: the time axis of all
    for p, (_, labelled) in zip(panels, _heights(W, R), strict=True):
        p.time_labels = labelled

    missing = [k for k in DNC_DATASETS if k not in source.shapes]
    if len(missing) == len(DNC_DATASETS):
        warnings.append(str(source.error("records none of the DNC's datasets (" + ", ".join(DNC_DATASETS)
                                         + "); their panels are left empty")))
    elif missing:
        warnings.append(str(source.error(f"{', '.join(missing)}: not recorded; their panels are left empty")))
    return DncScene(opts, (len(panels), 1), figsize, suptitle, panels, markers, warnings, peaks, dwell,
                    dict(source.metadata), boxes=rects)


def _nonfinite_warning(source, key: str, head: int | None) -> str:
    """The warning for a gate holding NaN or infinities: the first, and how many (read again, block by block;
    only for a gate that holds some)."""
    T, count, first = source.shapes[key][0], 0, None
    step = 2**20
    for a in range(0, T, step):
        block = np.asarray(source.block(key, a, min(T, a + step)))
        block = block[:, head] if head is not None else block
        bad = ~np.isfinite(block)
        if first is None and bad.any():
            first = (a + int(np.argmax(bad)), block[int(np.argmax(bad))])
        count += int(bad.sum())
    where = f" (head {head})" if head is not None and source.shapes[key][1] > 1 else ""
    return str(source.error(f"contains {first[1]} at step {source.time[0] + first[0]}{where}; {count:,} "
                            f"value{'s' if count > 1 else ''} NaN or infinite in all, drawn in bright green", key))


# -------------------------------------------------------------- link matrices


def link_cells(source, scene: Scene) -> dict:
    """The link matrix L_t of each column's step (its last step where a column stands for several) over
    the locations the figure's location panels draw in either order (``scene`` and its alternate), for
    the page: {"locations": (n,) in index order, "rows": {order: positions in locations of that order's
    rows}, "steps": (C,), "values": (C, heads, n, n) float32}; or {"omitted": why} when too large."""
    key, N = "link_matrices", source.locations
    shape = source.shapes[key]
    heads = shape[1] if len(shape) == 4 else 1
    orders = {}
    for s in (scene, scene.alternate):
        p = next((p for p in s.panels if p.of_locations and p.values is not None), None) if s else None
        if p is not None:
            orders[s.opts.order] = (np.asarray(p.locations) if p.locations is not None
                                    else np.arange(*p.rows) % N)
    if not orders:
        return {"omitted": "no location panel is drawn"}
    locations = np.unique(np.concatenate(list(orders.values())))
    first = next(p for p in scene.panels if p.values is not None)
    C, (t0, t1) = first.values.shape[0], source.time
    n = locations.size
    if C * heads * n * n > LINK_CELLS or C * int(np.prod(shape[1:])) * source.dtypes[key].itemsize > LINK_READ:
        return {"omitted": f"{C:,} steps x {heads} head(s) x {n} x {n} locations are too many for the page; draw "
                           "fewer with --time or --locations"}
    T = t1 - t0
    starts = pixel_bins(T, C)
    last = np.append(starts[1:] - 1, T - 1) if T > C else starts  # each column's last step, from t0
    values = np.empty((C, heads, n, n), np.float32)
    for i, step in enumerate(last.tolist()):
        block = np.asarray(source.reader.read(source.name, key, slice(t0 + step, t0 + step + 1)))[0]
        block = block.reshape(heads, N, N)
        values[i] = block[:, locations][:, :, locations]
    return {"locations": locations, "rows": {o: np.searchsorted(locations, locs) for o, locs in orders.items()},
            "steps": t0 + last, "values": values, "heads": heads}
