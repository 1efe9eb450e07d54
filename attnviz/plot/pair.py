"""Two traces compared: both grids on one shared view, and below, the difference of their weightings.

    compare_traces(a, b)   the Scenes of a and b, built on one window of steps, one crop of the
                           memory and one colour scale (animate's shared view), and a Scene of
                           b - a for each weighting panel, on a diverging scale centred on 0
    Comparison.draw()      one matplotlib Figure (PNG, SVG, PDF): a's grid, b's grid below it, then
                           the differences, each block headed by its trace
    Comparison.page()      the interactive page: the same panels; pointing at a cell reads a, b
                           and b - a there

The difference is read block by block like any panel: a reader hands build_scene b - a of the
two traces' weightings, so it is windowed, cropped and reduced by the same code as a and b. Reduced
by their maximum (long traces), a pixel of the difference shows the value of largest magnitude in
its block, with its sign (the maxima of b - a and of a - b, whichever is larger).
"""

from __future__ import annotations

import contextlib
import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..errors import AttnvizError, OptionError, format_location
from ..trace import ROOT, Trace
from .colors import DIVERGING, get_cmap, nonfinite_label
from .options import WEIGHTING_PANELS, PlotOptions, check_pixels, default_figsize, one_trace
from .plan import TITLE_ROOM, PanelGrid, Scene, axes_rects, build_scene, plan_panels, title_text
from .source import MemoryReader, Source

DIFF = "b \u2212 a"  # "b - a" with a true minus sign: the difference panels' titles and colour bar
HEADING = 0.3  # inches (at font size 10) above a block's panel titles for its heading
BLOCK_GAP = 0.1  # inches (at font size 10) between a block's x-axis labels and the next heading


@dataclass
class _Input:
    """One side of the comparison: a reader (an open file, or a Trace in memory) and a trace in it."""

    reader: object
    name: str
    file: str | None  # the path as given, None for a Trace in memory

    @property
    def where(self) -> str:
        """The file and trace, as error lines name them."""
        trace = self.name if self.name != ROOT or self.file is None else None
        return format_location(self.file, trace).removesuffix(": ") or "a trace in memory"


def _open(side, stack: contextlib.ExitStack, max_bytes, allow_external) -> _Input:
    """A Trace, a trace file's path (holding one trace), or (path, trace name)."""
    from ..io import open_traces

    if isinstance(side, Trace):
        path = getattr(side, "path", None)  # a Trace loaded from a file knows it
        return _Input(MemoryReader(side), side.name, None if path is None else os.fspath(path))
    path, name = side if isinstance(side, tuple) else (side, None)
    f = stack.enter_context(open_traces(path, max_bytes, allow_external))
    if name is None and len(f.names) > 1:
        raise f.error(f"holds {len(f.names)} traces ({', '.join(f.names[:5])}{', ...' if len(f.names) > 5 else ''}); "
                      "pick one by name (--trace NAME)")
    return _Input(f, f.resolve(name), os.fspath(path))


class _Difference:
    """b - a (``sign`` +1) or a - b (-1) of two traces' weightings, read like a trace file; every other
    dataset is a's."""

    def __init__(self, a: _Input, b: _Input, sign: int):
        self.a, self.b, self.sign, self.path = a, b, sign, None
        self.dtypes = {k: (a.reader.info(a.name).datasets[k][1], b.reader.info(b.name).datasets[k][1])
                       for k in WEIGHTING_PANELS}

    def info(self, name):
        from ..io import TraceInfo

        info = self.a.reader.info(self.a.name)
        datasets = {k: (s, np.dtype(np.float64) if k in WEIGHTING_PANELS else d) for k, (s, d) in info.datasets.items()}
        return TraceInfo(info.name, datasets, info.metadata)

    def read(self, name, dataset, rows=slice(None), cols=None):
        a = self.a.reader.read(self.a.name, dataset, rows, cols)
        if dataset not in WEIGHTING_PANELS:
            return a
        b = self.b.reader.read(self.b.name, dataset, rows, cols).astype(np.float64)
        return (b - a) if self.sign > 0 else (a - b)

    def chunk_rows(self, name, dataset) -> int:
        return self.a.reader.chunk_rows(self.a.name, dataset)

    def constant(self, name, dataset):
        return None

    def check_scan(self, name, dataset, shape, dtype, what="reading") -> None:
        for side, own in zip((self.a, self.b), self.dtypes.get(dataset, (dtype, dtype)), strict=True):
            side.reader.check_scan(side.name, dataset, shape, own, what)

    def error(self, problem, trace=None, dataset=None):
        return AttnvizError(f"{self.a.where} and {self.b.where}: {format_location(None, None, dataset)}{problem}")


def _check_alike(a: _Input, sa: Source, b: _Input, sb: Source, opts: PlotOptions) -> None:
    """Refuse, in one line naming both, two traces whose weightings cannot be subtracted cell by cell."""
    both = f"{a.where} and {b.where}"
    if sa.locations != sb.locations:
        raise AttnvizError(f"{a.where} has {sa.locations} memory locations and {b.where} {sb.locations}: "
                           "weightings over memories of different sizes cannot be compared location by location")
    for key in WEIGHTING_PANELS:
        ha, hb = (s.shapes[key][1] if len(s.shapes[key]) == 3 else 1 for s in (sa, sb))
        if ha != hb:
            raise AttnvizError(f"{a.where} has {ha} head(s) in {key} and {b.where} {hb}: compare one head of "
                               "each with --head")
    if sa.time != sb.time:
        (a0, a1), (b0, b1) = sa.time, sb.time
        if opts.time is None:
            raise AttnvizError(f"{a.where} has {a1} steps and {b.where} {b1}: the difference needs the same steps; "
                               f"compare the steps both have with --time 0:{min(a1, b1)}")
        window = ":".join("" if v is None else str(v) for v in opts.time)
        raise AttnvizError(f"{both}: --time {window} gives steps {a0}:{a1} of the first and {b0}:{b1} of the "
                           "second; the difference needs the same steps")


# ------------------------------------------------------------------ geometry


@dataclass
class _Figure(Scene):
    """The whole comparison as one Scene for draw_scene: every panel of a, b and the difference, each
    in its own rectangle (the blocks are stacked, each under a heading)."""

    boxes: list = field(default_factory=list)  # per panel: (left, bottom, width, height) in figure fractions

    def rects(self):
        return self.boxes


def _margins(opts: PlotOptions) -> dict[str, float]:
    """Inches, as plan.axes_rects has them; the right margin always holds a colour bar (the
    difference's, when the other panels have none)."""
    s = opts.fontsize / 10
    bar = 0.55 * s if opts.colorbar else 0.0
    return {"left": 0.75 * s, "right": 0.75 * s, "right_alone": 0.2 * s + bar, "top": 0.35 * s, "bottom": 0.55 * s,
            "hgap": 0.85 * s + bar, "vgap": 0.95 * s, "heading": HEADING * s, "block_gap": BLOCK_GAP * s}


def _panel_inches(grid, block_rows: list[int], opts: PlotOptions, titled: bool) -> tuple[float, float]:
    """Each panel's width and height in inches: those of the trace's own figure by default, or what
    --figsize leaves for them; on half a pixel, so that every Scene built at this size reduces its
    cells to the same number of pixels."""
    m, (rows, cols) = _margins(opts), grid
    if opts.figsize is None:
        size = default_figsize(grid, opts, False)
        rect = axes_rects(grid, size, opts, False)[0]
        w, h = rect[2] * size[0], rect[3] * size[1]
    else:
        W, H = opts.figsize
        w = (W - m["left"] - m["right"] - m["hgap"] * (cols - 1)) / cols
        fixed = (_title_inches(opts) if titled else 0) + m["bottom"] + sum(
            m["heading"] + m["top"] + m["vgap"] * (r - 1) for r in block_rows) + (len(block_rows) - 1) * (
            m["bottom"] + m["block_gap"])
        h = (H - fixed) / sum(block_rows)
        if w <= 0 or h <= 0:
            raise OptionError(f"figure of {W:g}x{H:g} inches leaves no room for a comparison of {rows}x{cols} "
                              "panels; enlarge --figsize or lower --fontsize")
    dpi = opts.dpi
    return (math.floor(w * dpi) + 0.5) / dpi, (math.floor(h * dpi) + 0.5) / dpi


def _title_inches(opts: PlotOptions) -> float:
    return TITLE_ROOM * opts.fontsize / 10


def _trace_figsize(grid, w: float, h: float, opts: PlotOptions) -> tuple[float, float]:
    """The size of a trace's own (untitled) figure whose panels are w x h inches (axes_rects inverted)."""
    m, (rows, cols) = _margins(opts), grid
    return (m["left"] + m["right_alone"] + cols * w + (cols - 1) * m["hgap"],
            m["top"] + m["bottom"] + rows * h + (rows - 1) * m["vgap"])


def _stack(blocks: list[list[tuple[int, int]]], w: float, h: float, cols: int, opts: PlotOptions, titled: bool):
    """Blocks of panels (each panel's row and column in its block) stacked top to bottom, each under
    a heading. Returns the figure size, each block's panel rectangles (figure fractions) and each
    block's heading position (figure fractions, its text's bottom left)."""
    m = _margins(opts)
    heights = [max(r for r, _ in slots) + 1 for slots in blocks]
    W = m["left"] + m["right"] + cols * w + (cols - 1) * m["hgap"]
    H = ((_title_inches(opts) if titled else 0) + m["bottom"] + (len(blocks) - 1) * (m["bottom"] + m["block_gap"])
         + sum(m["heading"] + m["top"] + r * h + (r - 1) * m["vgap"] for r in heights))
    if opts.figsize is not None:  # as asked: what the panels' whole pixels leave over goes to the margins
        W, H = opts.figsize
    rects, headings = [], []
    y = H - (_title_inches(opts) if titled else 0)  # inches from the bottom, going down
    for slots, rows in zip(blocks, heights, strict=True):
        y -= m["heading"] + m["top"]
        headings.append((0.1 * opts.fontsize / 10 / W, (y + m["top"] + 0.04 * opts.fontsize / 10) / H))
        rects.append([((m["left"] + c * (w + m["hgap"])) / W, (y - (r + 1) * h - r * m["vgap"]) / H, w / W, h / H)
                      for r, c in slots])
        y -= rows * h + (rows - 1) * m["vgap"] + m["bottom"] + m["block_gap"]
    return (W, H), rects, headings


# ----------------------------------------------------------------- comparison


@dataclass
class Comparison:
    """Two traces on one shared view, and the difference of their weightings.

    ``a`` and ``b`` are the Scenes of the two traces (one window of steps, one crop, one colour scale);
    ``diff`` is the Scene of b - a for each weighting panel they draw (None when they draw none):
    its panels' ``values`` are the cells drawn, ``raw`` what each stands for, on a scale symmetric
    about 0. ``headings`` name a and b as the figure does. ``draw()`` gives the matplotlib figure,
    ``save()`` writes files, ``page()`` the interactive page; in a notebook it shows itself.
    """

    a: Scene
    b: Scene
    diff: Scene | None
    headings: tuple[str, str]
    figure_scene: _Figure
    heading_at: list[tuple[float, float]]
    blocks: list[list[tuple[int, int]]]  # each block's panels: (row, column)
    diff_of: list[int] = field(default_factory=list)  # per difference panel: the index of its panel in a
    warnings: list[str] = field(default_factory=list)

    @property
    def opts(self) -> PlotOptions:
        return self.figure_scene.opts

    def block_headings(self) -> list[str]:
        """What heads each block of the figure: a's, b's, and the difference's."""
        diff = f"{DIFF}: the weightings of b minus those of a"
        if self.diff is not None:
            largest = max(_largest(p.raw) for p in self.diff.panels)
            colours = "red: b higher, blue: a higher; " if self.diff.panels[0].plan.cmap == DIVERGING else ""
            diff += f" ({colours}largest |{DIFF}|: {largest:.3g})"
        return [f"a: {self.headings[0]}", f"b: {self.headings[1]}", diff][: len(self.blocks)]

    def draw(self):
        """The comparison as a matplotlib Figure: a PlotResult with the figure and one Axes per panel,
        a's, then b's, then the differences'."""
        from .draw import default_style

        with default_style():
            return self._draw()

    def _draw(self):
        from .draw import draw_scene

        o, s = self.opts, self.opts.fontsize / 10
        result = draw_scene(self.figure_scene)
        result.scene = None  # no page of its own: in a notebook the figure shows as a PNG (page() is the page)
        fig = result.figure
        for text, (x, y) in zip(self.block_headings(), self.heading_at, strict=True):
            fig.text(x, y, text, ha="left", va="bottom", fontsize=o.fontsize, fontweight="bold")
        if self.diff is None:
            return result
        first = len(self.a.panels) + len(self.b.panels)
        W = self.figure_scene.figsize[0]
        rows: dict[int, int] = {}
        for k, (r, c) in enumerate(self.blocks[2]):  # the last panel of each row of differences
            if r not in rows or c > self.blocks[2][rows[r]][1]:
                rows[r] = k
        for k in range(len(self.diff.panels)):
            ax = result.axes[first + k]
            for line in ax.lines:  # white markers and wrap lines would vanish where b - a is 0 (white)
                line.set(color="0.3", alpha=1.0) if line.get_linestyle() == "--" else line.set(color="0.55")
            if o.colorbar:  # draw_scene gave every panel its bar
                cbar = result.colorbars[self.diff.panels[k].title]
            elif k in rows.values():
                x, y, w, h = self.figure_scene.boxes[first + k]
                cax = fig.add_axes((x + w + 0.08 * s / W, y, 0.12 * s / W, h))
                cbar = fig.colorbar(ax.images[0], cax=cax)
                cbar.ax.tick_params(labelsize=o.fontsize * 0.8)
            else:
                continue
            cbar.ax.set_title(DIFF, fontsize=o.fontsize * 0.8)
        return result

    def to_bytes(self, fmt: str) -> bytes:
        """The comparison in one format: png, svg, pdf or html."""
        if fmt == "html":
            return self.page().encode()
        from .draw import default_style, figure_bytes

        with default_style():
            return figure_bytes(self._draw().figure, fmt, self.opts.transparent)

    def save(self, path, formats=None) -> list[Path]:
        """Write the comparison to ``path`` (its suffix picks the format) or to ``path`` with each
        of ``formats``; atomically. Returns the paths written."""
        from .export import check_formats, check_output_name, write_outputs

        check_formats(formats)
        if formats:
            check_output_name(path)
        return write_outputs(path, formats, self.to_bytes)

    def page(self) -> str:
        """The interactive page: the three blocks under their headings; pointing at a cell of a, b or
        their difference reads all three there."""
        from .html import frames_page, scene_payload

        payloads = [scene_payload(s) for s in (self.a, self.b, self.diff) if s is not None]
        panels = [p for f in payloads for p in f["panels"]]
        n_a = len(self.a.panels)
        tags = ["a"] * n_a + ["b"] * len(self.b.panels) + [DIFF] * (len(panels) - 2 * n_a)
        for k, p in enumerate(panels):
            p["tag"] = tags[k]
        for i in range(n_a):  # a's panel, b's, and their difference: read together where they line up
            group = [i, n_a + i] + [2 * n_a + k for k, j in enumerate(self.diff_of) if j == i]
            group = [g for g in group if panels[g]["present"]]
            if len(group) > 1 and len({(panels[g]["cols"], panels[g]["nrows"]) for g in group}) == 1:
                for g in group:
                    panels[g].update(peers=[[h, tags[h]] for h in group], zoom=f"panel {i}", what=panels[i]["title"])
        for p in panels[2 * n_a:]:
            p["ink"] = "#4d4d4d"  # markers and wrap lines: grey, where white would vanish on b - a's 0
        starts = np.cumsum([0] + [len(b) for b in self.blocks]).tolist()
        headings = self.block_headings()
        sections = [{"heading": headings[k], "panels": list(range(starts[k], starts[k + 1])),
                     "slots": [list(rc) for rc in slots]} for k, slots in enumerate(self.blocks)]
        if self.diff is not None:
            p = self.diff.panels[0]
            sections[2]["legend"] = {"cmap": p.plan.cmap, "vmin": p.vmin, "vmax": p.vmax, "label": DIFF}
        frame = {**payloads[0], "title": self.figure_scene.suptitle, "panels": panels, "sections": sections,
                 "markers": list(self.figure_scene.markers), "label": ""}
        title = "attnviz: " + " vs ".join(self.headings)
        return frames_page([frame], self.opts.reduce, title=title)

    def _repr_png_(self) -> bytes:
        return self.to_bytes("png")

    def _repr_html_(self) -> str:
        from .html import inline_page

        return inline_page(self.page(), int(self.figure_scene.figsize[1] * self.opts.dpi * 1.25 + 140))


def _heading(side: _Input, metadata: dict, opts: PlotOptions) -> str:
    """What a block is headed with (after "a: "): the file, and the trace's name and metadata as a
    figure's title gives them (only its name with --no-title)."""
    name = side.name if side.name != ROOT else None
    if opts.title is False:
        bits = [name] if name else []
    else:
        text = title_text(metadata, side.name, PlotOptions())
        bits = [text] if text else []
    if side.file is None:
        return " \u00b7 ".join(bits) or "a trace in memory"
    return " \u00b7 ".join([side.file, *bits])


def _signed(pos: PanelGrid, neg: PanelGrid) -> PanelGrid:
    """The maxima of b - a and of a - b, reduced alike, as one panel of b - a: in each cell the larger
    in magnitude, with its sign (exactly b - a where nothing was reduced)."""
    values = np.where(pos.values >= neg.values, pos.values, -neg.values)
    raw = np.where(pos.raw >= neg.raw, pos.raw, -neg.raw)
    return replace(pos, values=values, raw=raw, nonfinite=nonfinite_label(values))


def _largest(values: np.ndarray) -> float:
    """The largest magnitude among the finite values (0 when none is): NaN and infinities are drawn
    in a colour of their own, outside the scale."""
    finite = np.abs(values[np.isfinite(values)])
    return float(finite.max()) if finite.size else 0.0


def _difference(a: _Input, b: _Input, sa: Scene, opts: PlotOptions, band, diff_cmap: str,
                diff_limit: float | None) -> tuple[Scene, list[int]]:
    """The Scene of b - a for each weighting panel of a's Scene, at the same size, crop and window, on
    the scale -diff_limit:diff_limit (by default -1:1, the most two weightings can differ, or wider if
    they differ more); and for each of its panels, the index of its panel in a's Scene."""
    keys = tuple(k for k in WEIGHTING_PANELS if any(p.plan.key == k for p in sa.panels))
    dopts = replace(opts, panels=keys, grid=sa.grid, panel_cmaps={k: diff_cmap for k in keys}).validated()
    pos = build_scene(Source(_Difference(a, b, +1), a.name, dopts), dopts, band=band, by_task=False)
    if opts.reduce == "max":  # a block's maximum of b - a and of a - b: keep the larger in magnitude
        neg = build_scene(Source(_Difference(a, b, -1), a.name, dopts), dopts, band=band, by_task=False)
        pos.panels = [_signed(p, n) for p, n in zip(pos.panels, neg.panels, strict=True)]
    span = diff_limit or max([1.0] + [_largest(p.raw) for p in pos.panels])  # weightings lie in [0, 1]
    for p in pos.panels:
        p.plan = replace(p.plan, title=f"{p.plan.title}: {DIFF}")
        p.vmin, p.vmax = -span, span
    index = {(p.plan.key, p.plan.head): i for i, p in enumerate(sa.panels)}
    return pos, [index[(p.plan.key, p.plan.head)] for p in pos.panels]


def comparison(a, b, options: PlotOptions | None = None, max_bytes: int | None = None, allow_external: bool = False,
               diff_cmap: str = DIVERGING, diff_limit: float | None = None, **kw) -> Comparison:
    """Compare two traces: see compare_traces."""
    from .animate import common_view

    opts = replace(options or PlotOptions(), **kw).validated()
    if opts.layout == "addressing":
        raise OptionError("layout addressing draws one trace's head, with attnviz plot; a comparison takes the "
                          "grid or paper layout")
    one_trace(opts, "a comparison")
    if diff_limit is not None and not (diff_limit > 0 and math.isfinite(diff_limit)):
        raise OptionError(f"--diff-limit {diff_limit:g} must be a number above 0")
    for name in (*opts.cmap_names, diff_cmap):
        get_cmap(name)  # an unknown colormap fails before any reading
    with contextlib.ExitStack() as stack:
        ia = _open(a, stack, max_bytes, allow_external)
        ib = _open(b, stack, max_bytes, allow_external)
        base = replace(opts, title=False, figsize=None)  # a block is headed by the comparison, not titled
        sa, sb = Source(ia.reader, ia.name, base), Source(ib.reader, ib.name, base)
        _check_alike(ia, sa, ib, sb, opts)
        panels, grid, _ = plan_panels(sa.shapes, base, sa.error)
        plan_panels(sb.shapes, base, sb.error)  # a panel named in --panels that b lacks fails here
        n_rows = [grid[0], grid[0]]
        weighted = sorted({i // grid[1] for i, p in enumerate(panels) if p.key in WEIGHTING_PANELS})
        if weighted:
            n_rows.append(len(weighted))
        suptitle = opts.title if isinstance(opts.title, str) and opts.title else None
        w, h = _panel_inches(grid, n_rows, opts, suptitle is not None)
        base = replace(base, figsize=_trace_figsize(grid, w, h, opts)).validated()
        band, ranges = common_view([build_scene(s, base, by_task=False) for s in (sa, sb)], base)
        shared = replace(base, limits={**ranges, **opts.limits}).validated()
        scene_a, scene_b = (build_scene(sa, shared, band=band, by_task=False),
                            build_scene(sb, shared, band=band, by_task=False))
        diff, diff_of = (_difference(ia, ib, scene_a, shared, band, diff_cmap, diff_limit) if weighted else (None, []))
        headings = (_heading(ia, sa.metadata, opts), _heading(ib, sb.metadata, opts))
    slots = [(i // grid[1], i % grid[1]) for i in range(len(scene_a.panels))]
    blocks = [slots, slots]
    if diff is not None:
        blocks.append([(weighted.index(slots[j][0]), slots[j][1]) for j in diff_of])
    figsize, rects, heading_at = _stack(blocks, w, h, grid[1], opts, suptitle is not None)
    check_pixels(figsize, opts.dpi)
    markers = tuple(sorted(set(scene_a.markers) | set(scene_b.markers)))
    all_panels = scene_a.panels + scene_b.panels + (diff.panels if diff is not None else [])
    figure = _Figure(replace(shared, figsize=figsize), (sum(n_rows), grid[1]), figsize, suptitle, all_panels, markers,
                     boxes=[r for block in rects for r in block])
    warnings = list(dict.fromkeys(scene_a.warnings + scene_b.warnings))
    return Comparison(scene_a, scene_b, diff, headings, figure, heading_at, blocks, diff_of, warnings)


def compare_traces(a, b, output=None, options: PlotOptions | None = None, formats=None, *,
                   max_bytes: int | None = None, allow_external: bool = False, diff_cmap: str = DIVERGING,
                   diff_limit: float | None = None, **kw):
    """Draw two traces on one shared view (the same steps, crop and colour scale) with, below, the
    difference b - a of each weighting panel on a diverging scale centred on 0 (``diff_cmap``;
    RdBu_r: blue where a is higher, red where b is) from -``diff_limit`` to ``diff_limit`` (default:
    1, the most two weightings can differ). ``a`` and ``b`` are each a Trace, a trace file's
    path (holding one trace) or ``(path, trace name)``. Keyword arguments set PlotOptions fields.

    With ``output``: writes it (its suffix picks PNG, SVG, PDF or HTML; or each of ``formats``) and
    returns the paths written. Without: returns the Comparison (its Scenes, the data drawn; a
    notebook shows it). Traces whose weightings cannot be subtracted (other memory sizes, heads or
    steps) are refused with one line naming both."""
    from .export import check_formats, check_output_name

    check_formats(formats)
    if output is not None:
        check_output_name(output)
    elif formats:
        raise OptionError("formats need an output path to write to")
    result = comparison(a, b, options, max_bytes, allow_external, diff_cmap, diff_limit, **kw)
    return result if output is None else result.save(output, formats)


def default_output(a, b) -> Path:
    """Where ``attnviz compare`` writes when not told: beside a's file, ``A-vs-B.png`` (each side its
    file's stem, and ``__TRACE`` for a trace picked by name; two traces of one file:
    ``FILE__A-vs-B.png``)."""
    from ..batch import safe_name
    from ..trace import normalise_name

    def parts(side):
        path, name = side if isinstance(side, tuple) else (side, None)
        name = None if name is None or normalise_name(name) == ROOT else normalise_name(name).replace("/", "__")
        return Path(path), name

    (fa, na), (fb, nb) = parts(a), parts(b)
    if fa == fb and na and nb:
        stem = f"{fa.stem}__{na}-vs-{nb}"
    else:
        stem = "-vs-".join(f.stem + (f"__{n}" if n else "") for f, n in ((fa, na), (fb, nb)))
    return fa.with_name(safe_name(stem) + ".png")
