"""The NTM paper's figure of each task: ``--layout paper`` for a trace whose ``task`` the paper drew its own way.

Graves, Wayne and Danihelka (2014) drew each experiment's memory use in a figure of its own. For copy,
repeat copy and associative recall (and any task not named below) ``--layout paper`` is the 3x2 grid
of plan.py: Inputs and Outputs, Adds and Reads, Write and Read Weightings. For the other two:

    ngrams          Figures 14 and 15: Inputs, the model's predictions ("Outputs") and the optimal
                    predictor's ("Optimal predictions", the trace's baseline_outputs) as thin strips on
                    one time axis; then the Write and Read Weightings
    priority-sort   Figure 17: Inputs (the vectors and the delimiter) and a strip of their priorities,
                    Outputs; then, side by side on one crop of the memory, the Hypothesised Locations (a
                    cell per item at the location a line through (priority, write location) gives,
                    fitted by Theil and Sen: analysis.priority_fit), the Write Weightings and
                    the Read Weightings; the fit's R squared in the Hypothesised Locations' title,
                    and the line, its slope, intercept, R squared and the items on it in two lines
                    below the figure

A head kind with several heads (the paper's priority sort had eight of each) is one panel, each
location's maximum over the heads (``--head N`` draws head N alone). A dataset the trace did not record
is an empty panel titled "(not recorded)", named in one warning. The figures draw one trace:
``compare``, ``animate`` and run folders draw the 3x2 grid for every task.

    task_figure(metadata, opts)   the builder of a trace's figure, or None (the grid)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import OptionError
from .anatomy import INK, StageGrid, _reduced
from .colors import DIVERGING, SEQUENTIAL, nonfinite_label
from .options import PANELS, PlotOptions, check_pixels
from .plan import TITLE_ROOM, PanelPlan, Scene, Ticks, _ladder, limits, pixel_size, time_markers, title_text
from .reduce import pixel_bins, reduce_axis
from .rows import arrange

WIDTH = {"ngrams": 8.0, "priority-sort": 9.0}  # inches at font size 10, without colour bars (8: the grid's)
STRIP = 0.22  # inches at font size 10 a row of a strip (up to STRIP_ROWS rows)
STRIP_ROWS = 3
HEIGHT = {"inputs": 1.0, "outputs": 1.0, "weightings": 1.6, "side": 2.0}  # inches at font size 10
TITLE = 0.3  # inches at font size 10 above each row of panels, for their titles
BELOW = {True: 0.25, False: 0.07}  # below a row with time tick labels, and below one without
MARGINS = {"left": 0.75, "right": 0.2, "top": 0.05, "bottom": 0.55}
HGAP = 0.85  # between panels side by side: the right one's tick labels and y label
NOTE = 0.19  # inches at font size 10 a line of text below the figure
PRIORITY = "Priority"


@dataclass
class PaperScene(Scene):
    """A task's figure: its panels in rows, each in its own rectangle (``boxes``), and ``notes``: lines of
    text below the panels, as (x, y, text) in figure fractions (the priority fit)."""

    boxes: list = field(default_factory=list)
    notes: list = field(default_factory=list)

    def rects(self):
        return self.boxes

    def frame_key(self) -> tuple:
        return super().frame_key() + (tuple(self.boxes), tuple(self.notes),
                                      tuple((p.xlabel, p.ink, p.time_labels, p.yticks, getattr(p, "empty", None))
                                            for p in self.panels))

    def page_extras(self, payload: dict) -> None:
        """The page shows the notes below the figure; a strip's rows are not zoomed, and pointing at a strip
        of one row reads out its value at the step ("Optimal predictions · step 30 · 0.750"); a panel left
        empty says why."""
        from .anatomy import _b64

        payload["notes"] = [text for _, _, text in self.notes if text]
        for p, entry in zip(self.panels, payload["panels"], strict=True):
            if p.strip:
                entry["fixed"] = True
                if p.values is not None and p.values.shape[1] == 1:
                    entry.update(series=_b64(p.raw[:, 0].astype("<f4")), name=p.title)
                else:
                    entry["ylabel"] = p.row_kind  # (what the readout calls a row)
            if p.values is None:
                entry["empty"] = p.empty


@dataclass
class PaperGrid(StageGrid):
    """A panel of a task's figure. ``strip``: a thin strip (no row zoom on the page); ``empty``: what an
    empty panel says (the fit that could not be made: "no fit")."""

    strip: bool = False
    empty: str = "not recorded"
    row_kind: str = ""  # a strip's rows, which its y label does not name: "Bit", "Channel"


def task_figure(metadata: dict, opts: PlotOptions):
    """The builder of the paper's figure of the trace's task (``build_ngrams``, ``build_priority_sort``), or
    None: the layout's grid (another layout or task, or ``--panels`` or ``--grid`` given)."""
    if opts.layout != "paper" or opts.panels or opts.grid:
        return None
    return {"ngrams": build_ngrams, "priority-sort": build_priority_sort}.get(metadata.get("task"))


# ------------------------------------------------------------------ geometry


def figure_size(opts: PlotOptions, titled: bool, rows, notes: int = 0, width: float = 8.0) -> tuple[float, float]:
    """Inches: ``width`` wide (and a colour bar per panel of the widest row), the rows, their titles, the
    gaps below them and the notes' lines high; growing with the font. ``rows``: (height, panels, time
    labels) each."""
    s = opts.fontsize / 10
    bar = 0.55 * s if opts.colorbar else 0.0
    most = max(n for _, n, _ in rows)
    height = (MARGINS["top"] + (TITLE_ROOM if titled else 0) + sum(h + TITLE for h, _, _ in rows)
              + sum(BELOW[t] for _, _, t in rows[:-1]) + MARGINS["bottom"] + NOTE * notes)
    return width * s + bar * most, height * s


def figure_rects(figsize, opts: PlotOptions, titled: bool, rows, notes: int = 0):
    """Each panel's (left, bottom, width, height) in figure fractions, row by row from the top, left to
    right: titles, gaps and margins fixed in inches, the rows' heights in their proportions; and the top of
    the notes' first line (a figure fraction)."""
    W, H = figsize
    s = opts.fontsize / 10
    bar = 0.55 * s if opts.colorbar else 0.0
    m = {k: v * s for k, v in MARGINS.items()}
    top = m["top"] + (TITLE_ROOM * s if titled else 0)
    fixed = top + m["bottom"] + s * (TITLE * len(rows) + sum(BELOW[t] for _, _, t in rows[:-1]) + NOTE * notes)
    scale = (H - fixed) / sum(h for h, _, _ in rows)
    widths = {n: (W - m["left"] - m["right"] - n * bar - (n - 1) * HGAP * s) / n for _, n, _ in rows}
    if min(widths.values()) <= 0 or scale <= 0:
        raise OptionError(f"figure of {W:g}x{H:g} inches leaves no room for the panels of layout paper; enlarge "
                          "--figsize or lower --fontsize")
    out, y = [], H - top
    for h, n, ticks in rows:
        y -= TITLE * s + h * scale
        for k in range(n):
            x = m["left"] + k * (widths[n] + bar + HGAP * s)
            out.append((x / W, y / H, widths[n] / W, h * scale / H))
        y -= BELOW[ticks] * s
    return out, (y - 0.55 * s + BELOW[rows[-1][2]] * s) / H


def strip_height(width: int) -> float:
    return STRIP * min(max(width, 1), STRIP_ROWS)


# --------------------------------------------------------------------- reading


class _Reader:
    """What the builders share: the source, the options, the window, the mask and the warnings."""

    def __init__(self, source, opts: PlotOptions):
        self.source, self.opts = source, opts
        self.t0, self.t1 = source.time
        whole = source.output_mask()
        self.mask = None if whole is None else whole[self.t0 : self.t1]
        self.warnings: list[str] = []

    def empty(self, key: str, title: str, ylabel: str, cmap: str | None = None, strip: bool = False) -> PaperGrid:
        plan = PanelPlan(key, None, title, cmap or SEQUENTIAL, present=False)
        self.warnings.append(str(self.source.error("not recorded; its panel is left empty", key)))
        return PaperGrid(plan, ylabel, None, time=(self.t0, self.t1), row_ticks=Ticks() if strip else None,
                         strip=strip)

    def cells(self, key: str, head, size):
        """A dataset's cells (of one head, or the maximum over ``head``'s list of heads), and the warning of
        its values that are not numbers."""
        heads = head if isinstance(head, list) else [head]
        read = [self.source.cells(key, h, *size, self.opts.reduce) for h in heads]
        values = read[0][0] if len(read) == 1 else np.maximum.reduce([r[0] for r in read])
        lo, hi = min(r[1] for r in read), max(r[2] for r in read)
        bad = next((r[3] for r in read if r[3] is not None), None)
        if bad is not None:
            count = sum(r[3].count for r in read if r[3] is not None)
            self.warnings.append(str(self.source.error(f"{bad.first}; {count:,} value{'s' if count > 1 else ''} "
                                                       "NaN or infinite in all, drawn in bright green", key)))
        return values, lo, hi, bad

    def unscored(self, width: int) -> np.ndarray | None:
        if self.mask is None:
            return None
        return ~(reduce_axis(self.mask[:, None].astype(np.float64), width, 0, "max")[:, 0] > 0)

    def panel(self, key: str, title: str, size, *, strip: bool = False, rows=None, head=None, channels=None,
              scale: str | None = None, ink: str | None = None) -> PaperGrid:
        """A Time x rows panel of ``key``: its ``channels`` only (the rows named by their channel), or the
        location ``rows`` (rows.Rows) of head ``head`` (a list: their maximum); a strip has no y ticks."""
        kind = PANELS[key]
        cmap = self.opts.panel_cmaps.get(key) or self.opts.cmap or (
            DIVERGING if (scale or kind.scale) in ("signed", "priority") else SEQUENTIAL)
        ylabel = "" if strip else rows.label() if rows is not None else kind.rows
        if key not in self.source.shapes:
            return self.empty(key, title, ylabel, cmap, strip)
        values, lo, hi, bad = self.cells(key, head, size)
        span, modulo, locations, ticks, names = (0, values.shape[1]), None, None, None, None
        if rows is not None:
            values, span, modulo, locations = rows.take(values), rows.span, rows.modulo, rows.locations
            ticks = rows.ticks(size[1], self.opts)
        if channels is not None:
            values = values[:, channels]
            finite = values[np.isfinite(values)]
            lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
            span = (0, len(channels))
            names = tuple(str(c) for c in channels)
            ticks = Ticks() if strip else named_ticks(names, size[1], self.opts)
        if strip:
            ticks = Ticks()
        values, raw = _reduced(values, size, (self.t1 - self.t0, span[1] - span[0]), self.opts.reduce)
        if scale == "priority":
            m = max(1.0, abs(lo), abs(hi))  # -1 to 1, the priorities' range, unless they go beyond
            vmin, vmax = -m, m
        else:
            vmin, vmax = limits(kind.scale, self.opts.limits.get(key), lo, hi)
        unscored = self.unscored(size[0]) if key in ("outputs", "targets", "baseline_outputs") else None
        return PaperGrid(PanelPlan(key, None if head is None or isinstance(head, list) else head, title, cmap),
                         ylabel, values, vmin, vmax, unscored, (self.t0, self.t1), span, modulo, raw,
                         None if bad is None else nonfinite_label(values), locations, ticks, names, ink=ink,
                         strip=strip, row_kind=kind.rows)


def named_ticks(names: tuple[str, ...], height: int, opts: PlotOptions) -> Ticks:
    """Ticks at every k-th row, labelled with the rows' names (k from NICE's steps: as many labels as the
    panel's ``height`` pixels hold, as rows.Rows.ticks has them)."""
    n = len(names)
    label = 1.5 * 0.8 * opts.fontsize * opts.dpi / 72
    most = max(2, int(height // label))
    steps = _ladder(n)
    step = next(s for s in steps if -(-n // s) <= most)
    at = tuple(range(0, n, step))
    return Ticks(at, tuple(names[k] for k in at), tuple(s for s in reversed(steps) if s <= step))


def _heads(shape) -> int:
    return shape[1] if len(shape) == 3 else 1


def weighting_heads(source, opts: PlotOptions) -> dict[str, tuple[object, str]]:
    """Per head kind, the heads to draw (None: one head stored without its axis; a number: that head; a list:
    their maximum) and the suffix of the panel's title. A ``--head`` that a kind lacks is an OptionError."""
    out = {}
    for key in ("write_weightings", "read_weightings"):
        shape = source.shapes[key]
        n = _heads(shape)
        if opts.head is not None:
            if not opts.head < n:
                has = f"{n} heads, 0 to {n - 1}" if n > 1 else "1 head, head 0"
                raise OptionError(str(source.error(f"head {opts.head} does not exist; it has {has}", key)))
            out[key] = (opts.head if len(shape) == 3 else None, f" (head {opts.head})")
        elif n > 1:
            out[key] = (list(range(n)), f" ({n} heads, max)")
        else:
            out[key] = (0 if len(shape) == 3 else None, "")
    return out


def location_rows(r: _Reader, heads: dict, size, band):
    """The rows of the weightings' panels: what any drawn head uses (rows.arrange, as for the grid)."""
    source, N = r.source, r.source.locations
    whole = []
    for key, (head, _) in heads.items():
        for h in head if isinstance(head, list) else [head]:
            v = source.cells(key, h, *size, r.opts.reduce)[0]
            whole.append(np.where(np.isfinite(v), v, 0.0))
    peaks = dwell = None
    if all(w.shape[1] == N for w in whole) and not source.columns:
        peaks, dwell = np.max([w.max(axis=0) for w in whole], axis=0), np.sum([w.sum(axis=0) for w in whole], axis=0)
    rows, more = arrange(source, r.opts, peaks, dwell, band)
    r.warnings += more
    return rows, peaks, dwell


def _scene(source, opts, rows_spec, build, band, notes=0) -> PaperScene:
    """Lay out ``rows_spec`` ((height, panels, time labels) per row), then let ``build(reader, sizes)`` read
    the panels; the Scene, with the notes ``build`` returns (lines of text) below the panels."""
    suptitle = title_text(source.metadata, source.name, opts)
    figsize = opts.figsize or figure_size(opts, suptitle is not None, rows_spec, notes,
                                          WIDTH[source.metadata["task"]])
    check_pixels(figsize, opts.dpi)
    rects, note_top = figure_rects(figsize, opts, suptitle is not None, rows_spec, notes)
    sizes = [pixel_size(rect, figsize, opts.dpi) for rect in rects]
    r = _Reader(source, opts)
    panels, peaks, dwell, lines = build(r, sizes, band)
    row_of = [k for k, (_, n, _) in enumerate(rows_spec) for _ in range(n)]
    for p, row in zip(panels, row_of, strict=True):
        p.time_labels = rows_spec[row][2]
        if row == len(rows_spec) - 1:
            p.xlabel = "Time"
    s = opts.fontsize / 10
    notes_at = [(MARGINS["left"] * s / figsize[0], note_top - k * NOTE * s / figsize[1], text)
                for k, text in enumerate(lines)]
    return PaperScene(opts, (len(panels), 1), figsize, suptitle, panels, time_markers(source, opts), r.warnings,
                      peaks, dwell, dict(source.metadata), boxes=rects, notes=notes_at)


# --------------------------------------------------------------------- N-grams


def _ngram_rows(source) -> list:
    def width(key):
        return source.shapes[key][1] if key in source.shapes else 1

    return [(strip_height(width("inputs")), 1, False), (strip_height(width("outputs")), 1, False),
            (strip_height(width("baseline_outputs")), 1, True), (HEIGHT["weightings"], 1, True),
            (HEIGHT["weightings"], 1, True)]


def build_ngrams(source, opts: PlotOptions, band=None) -> PaperScene:
    """Figures 14 and 15 of the paper: Inputs, Outputs and Optimal predictions as strips, then the Write and
    Read Weightings (see the module's docstring)."""
    heads = weighting_heads(source, opts)

    def build(r: _Reader, sizes, band):
        rows, peaks, dwell = location_rows(r, heads, sizes[3], band)
        panels = [r.panel("inputs", "Inputs", sizes[0], strip=True),
                  r.panel("outputs", "Outputs (the model's predictions)", sizes[1], strip=True),
                  r.panel("baseline_outputs", "Optimal predictions", sizes[2], strip=True)]
        for key, size in zip(heads, sizes[3:], strict=True):
            head, suffix = heads[key]
            panels.append(r.panel(key, PANELS[key].title + suffix, size, rows=rows, head=head))
        return panels, peaks, dwell, []

    return _scene(source, opts, _ngram_rows(source), build, band)


# --------------------------------------------------------------------- priority sort


def _priority_rows() -> list:
    return [(HEIGHT["inputs"], 1, False), (STRIP, 1, True), (HEIGHT["outputs"], 1, True), (HEIGHT["side"], 3, True)]


def build_priority_sort(source, opts: PlotOptions, band=None) -> PaperScene:
    """Figure 17 of the paper: Inputs, their priorities and Outputs; then the Hypothesised Locations beside
    the Write and Read Weightings, and the fit below (see the module's docstring)."""
    heads = weighting_heads(source, opts)

    def build(r: _Reader, sizes, band):
        analysis, why = _fit(source)
        if why:
            r.warnings.append(str(source.error(f"no hypothesised locations: {why}")))
        width = source.shapes["inputs"][1]
        channel = analysis["priority_channel"] if analysis else None
        rows, peaks, dwell = location_rows(r, heads, sizes[3], band)
        others = [c for c in range(width) if c != channel]
        panels = [r.panel("inputs", "Inputs", sizes[0], channels=others)]
        if channel is None:
            panels.append(PaperGrid(PanelPlan("inputs", None, PRIORITY, DIVERGING), "", None,
                                    time=(r.t0, r.t1), row_ticks=Ticks(), strip=True, empty="no priority channel"))
        else:
            panels.append(r.panel("inputs", f"{PRIORITY} (input channel {channel})", sizes[1], strip=True,
                                  channels=[channel], scale="priority", ink=INK))
        panels.append(r.panel("outputs", "Outputs", sizes[2]))
        panels.append(_hypothesised(r, analysis, rows, sizes[3]))
        for key, size in zip(heads, sizes[4:], strict=True):
            head, suffix = heads[key]
            panels.append(r.panel(key, PANELS[key].title + suffix, size, rows=rows, head=head))
        return panels, peaks, dwell, fit_notes(analysis, why)

    return _scene(source, opts, _priority_rows(), build, band, notes=2)


def _fit(source) -> tuple[dict | None, str | None]:
    """priority_sort_analysis of the whole trace (the items' steps, whatever the time window), or the
    reason there is none."""
    from ..analysis import priority_locations, sort_items

    reader, name = source.reader, source.name
    try:
        inputs = np.asarray(reader.read(name, "inputs"), np.float64)
        items, _ = sort_items(inputs, source.metadata)
        ww = np.asarray(reader.read(name, "write_weightings", slice(0, items)), np.float64)
        return priority_locations(inputs, ww, source.metadata), None
    except ValueError as e:
        return None, str(e)


def fit_notes(analysis: dict | None, why: str | None) -> list[str]:
    """The two lines below the priority-sort figure: the line fitted, then its slope, intercept, R² and
    how many items lie on it."""
    from ..analysis import describe_fit, fitted_items, intercept_text

    if analysis is None:
        return [f"Hypothesised Locations: no fit ({why})", ""]
    fit, N = analysis["fit"], analysis["locations"]
    sign = "\u2212" if fit["slope"] < 0 else "+"
    return [f"Hypothesised Locations: location = {intercept_text(fit, N)} {sign} {abs(fit['slope']):.3g} \u00d7 "
            f"priority, the line (Theil\u2013Sen) through the write locations of {fitted_items(analysis)}",
            describe_fit(fit, N).replace("-", "\u2212")]


def _hypothesised(r: _Reader, analysis: dict | None, rows, size) -> PaperGrid:
    """A Time x Location panel on the weightings' rows: a cell of 1 at each item's step, at the location the
    fitted line gives its priority (rounded to the nearest location)."""
    title = "Hypothesised Locations"
    if analysis is None:
        return PaperGrid(PanelPlan("write_weightings", None, title, SEQUENTIAL), rows.label(), None,
                         time=(r.t0, r.t1), empty="no fit")
    source, N = r.source, r.source.locations
    T = r.t1 - r.t0
    C = min(T, size[0])
    starts = pixel_bins(T, C)
    width = source.columns[1] - source.columns[0] if source.columns else N
    values = np.zeros((C, width))
    for step, location in enumerate(analysis["hypothesised"]):
        if r.t0 <= step < r.t1:
            column = int(np.searchsorted(starts, step - r.t0, side="right")) - 1 if T > C else step - r.t0
            at = (int(round(location)) - (source.columns[0] if source.columns else 0)) % N
            if at < width:
                values[column, at] = 1.0
    values = rows.take(values)
    r2 = analysis["fit"]["r_squared"]
    title += f" (R\u00b2 {r2:.2f})" if r2 is not None else ""
    cmap = r.opts.panel_cmaps.get("write_weightings") or r.opts.cmap or SEQUENTIAL
    values, raw = _reduced(values, size, (T, rows.span[1] - rows.span[0]), r.opts.reduce)
    vmin, vmax = limits("probability", r.opts.limits.get("write_weightings"), 0.0, 1.0)
    return PaperGrid(PanelPlan("write_weightings", None, title, cmap), rows.label(), values, vmin, vmax, None,
                     (r.t0, r.t1), rows.span, rows.modulo, raw, None, rows.locations, rows.ticks(size[1], r.opts))
