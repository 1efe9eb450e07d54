"""What a figure can show (panels, layouts) and the options that shape it, validated once."""

from __future__ import annotations

from dataclasses import dataclass, field
from numbers import Integral

from ..errors import OptionError, did_you_mean
from ..trace import stage_name


@dataclass(frozen=True)
class PanelKind:
    """How a dataset is drawn: its title, what its rows are, and its colour scale.

    scale: "probability" (fixed 0:1), "signed" (diverging, centred on 0) or "data" (0:1 when the
    values lie in [0, 1], else their own range).
    """

    title: str
    rows: str
    scale: str


PANELS = {
    "inputs": PanelKind("Inputs", "Channel", "data"),
    "outputs": PanelKind("Outputs", "Bit", "probability"),
    "targets": PanelKind("Targets", "Bit", "probability"),
    "baseline_outputs": PanelKind("Optimal predictions", "Bit", "probability"),
    "write_weightings": PanelKind("Write Weightings", "Location", "probability"),
    "read_weightings": PanelKind("Read Weightings", "Location", "probability"),
    "adds": PanelKind("Adds", "Element", "signed"),
    "erases": PanelKind("Erases", "Element", "probability"),
    "reads": PanelKind("Reads", "Element", "signed"),
    "usage": PanelKind("Usage", "Location", "probability"),
    "allocation_weightings": PanelKind("Allocation Weightings", "Location", "probability"),
    "precedence_weightings": PanelKind("Precedence Weightings", "Location", "probability"),
}
LAYOUTS = {
    "grid": (("inputs", "outputs", "write_weightings", "read_weightings"), (2, 2)),
    "paper": (("inputs", "outputs", "adds", "reads", "write_weightings", "read_weightings"), (3, 2)),
    "addressing": ((), (8, 1)),  # one head's stages, one above the other: its panels are anatomy.py's
    "dnc": ((), (9, 1)),  # the DNC's memory, one panel above the other: its panels are dnc.py's
}
OWN_PANELS = ("addressing", "dnc")  # layouts that draw their own panels, one above the other, on one time axis
ORDERS = ("index", "written")  # location rows by number, or by the step of their first strong write
WEIGHTING_PANELS = ("write_weightings", "read_weightings")  # the crop holds what these use
LOCATION_PANELS = WEIGHTING_PANELS + ("usage", "allocation_weightings", "precedence_weightings")  # one crop
HEAD_KINDS = ("write", "read")
# Datasets with one column per memory location: a --locations window reads only its columns of each.
LOCATION_DATASETS = LOCATION_PANELS + tuple(stage_name(k, s) for k in HEAD_KINDS
                                             for s in ("content_weightings", "gated_weightings", "shifted_weightings"))
PER_HEAD = ("write_weightings", "read_weightings", "adds", "erases", "reads", "allocation_weightings",
            "precedence_weightings")
MASKED_PANELS = ("outputs", "targets", "baseline_outputs")  # drawn masked where output_mask says "not scored"
FORMATS = ("png", "svg", "pdf", "html")
REDUCTIONS = ("max", "mean")
MAX_PIXELS = 50_000_000  # a figure larger than this (about 7,000 x 7,000) is refused before drawing


def default_figsize(grid, opts: PlotOptions, titled: bool) -> tuple[float, float]:
    """Inches: 4 x 2.6 a panel at font size 10, growing with the font, colour bars and title."""
    rows, cols = grid
    s = opts.fontsize / 10
    return (4.0 * cols * s + (0.55 * cols * s if opts.colorbar else 0), 2.6 * rows * s + (0.4 * s if titled else 0))


def one_trace(opts: PlotOptions, what: str) -> None:
    """Refuse what only a figure of one trace draws, for ``what`` ("a comparison", "an animation": several
    traces on one view): layout dnc, and locations in the order written (each trace writes in its own
    order; a shared view has one)."""
    if opts.layout == "dnc":
        raise OptionError(f"layout dnc draws one trace's memory, with attnviz plot; {what} is drawn in the grid or "
                          "paper layout")
    if opts.order != "index":
        raise OptionError(f"--order {opts.order} sorts one trace's locations by its own writes, with attnviz plot; "
                          f"{what} shares one crop, its locations by number")


def check_pixels(figsize, dpi) -> None:
    """Refuse, before drawing, a figure larger than MAX_PIXELS."""
    w, h = figsize
    if w * h * dpi**2 > MAX_PIXELS:
        raise OptionError(f"a figure of {w:g}x{h:g} inches at {dpi:g} dpi is {w * h * dpi**2:,.0f} pixels, over "
                           f"the limit of {MAX_PIXELS:,}; lower --figsize, --dpi or --grid")


@dataclass
class PlotOptions:
    """Everything that shapes a figure. The defaults draw the paper's figure of the memory in use."""

    layout: str = "grid"  # "grid" (2x2), "paper" (3x2, with Adds and Reads), "addressing" (one head's stages) or
    # "dnc" (the DNC's memory: weightings, gates, read modes, usage)
    panels: tuple[str, ...] | None = None  # overrides the layout's panels; a missing one is an error
    grid: tuple[int, int] | None = None  # rows, columns; default: the layout's, grown to fit
    cmap: str | None = None  # every panel; None: "attnviz", and a diverging map for signed panels
    panel_cmaps: dict[str, str] = field(default_factory=dict)  # panel name -> colormap
    limits: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)  # panel -> (lo, hi)
    colorbar: bool = False
    head: int | str | None = None  # draw only this head; None: one panel per head. "read:0", "write:1": a head
    # by kind, for layout "addressing" (default: read head 0; a number N there is read head N)
    title: bool | str = True  # True: from metadata (task, step, length) when it has any; a str: as given
    markers: tuple[int, ...] = ()  # time steps to mark with a dashed line (before that step)
    phase_marker: bool = True  # a dashed line where the output phase starts (output_mask or copy metadata)
    figsize: tuple[float, float] | None = None  # inches; default grows with the grid
    dpi: float = 100
    fontsize: float = 10
    transparent: bool = False
    time: tuple[int | None, int | None] | None = None  # window of steps [start, stop)
    locations: str | tuple[int | None, int | None] = "auto"  # "auto": the memory in use; "all"; or a window,
    # [start, stop) (a stop below the start wraps: (100, 10) is 100..N-1, then 0..9)
    reduce: str = "max"  # how a pixel summarises a block of cells: "max" (keeps spikes) or "mean"
    order: str = "index"  # location rows: "index" (by number) or "written" (by the step of their first strong write)

    @property
    def head_choice(self) -> tuple[str | None, int | None]:
        """(kind, number) of ``head``: (None, N) for a number, ("read", N) for "read:N", (None, None)
        for no head. A head that cannot exist (-1, "sideways:0") raises OptionError."""
        if self.head is None:
            return None, None
        if isinstance(self.head, str):
            kind, sep, number = self.head.partition(":")
            if not sep or kind not in HEAD_KINDS or not number.isdigit():
                raise OptionError(f"head {self.head!r} is not a head: give a number (0) or a kind and a number "
                                  f"({' or '.join(k + ':0' for k in HEAD_KINDS)})")
            return kind, int(number)
        if isinstance(self.head, bool) or not isinstance(self.head, Integral) or self.head < 0:
            raise OptionError(f"head {self.head} does not exist; heads are numbered from 0")
        return None, int(self.head)

    @property
    def addressed_head(self) -> tuple[str, int]:
        """The head that layout addressing draws: read head 0 unless ``head`` says otherwise; a bare
        number is a read head."""
        kind, index = self.head_choice
        return kind or "read", index or 0

    @property
    def cmap_names(self) -> tuple[str, ...]:
        return tuple(c for c in (self.cmap, *self.panel_cmaps.values()) if c is not None)

    def validated(self) -> PlotOptions:
        """Check the options, with one message per mistake (colormaps: see colors.get_cmap)."""
        if self.layout not in LAYOUTS:
            raise OptionError(f"unknown layout {self.layout!r}; choose {', '.join(LAYOUTS)}")
        for p in list(self.panels or ()) + list(self.panel_cmaps) + list(self.limits):
            if p not in PANELS:
                hint = did_you_mean(p, PANELS) or f"; panels are {', '.join(PANELS)}"
                raise OptionError(f"unknown panel {p!r}{hint}")
        if self.panels is not None and not self.panels:
            raise OptionError("--panels names no panel")
        if self.order not in ORDERS:
            raise OptionError(f"unknown order {self.order!r}; choose {', '.join(ORDERS)}")
        if self.reduce not in REDUCTIONS:
            raise OptionError(f"unknown reduction {self.reduce!r}; choose {', '.join(REDUCTIONS)}")
        if not (self.dpi > 0 and self.fontsize > 0):
            raise OptionError("dpi and font size must be positive")
        if self.grid is not None:
            rows, cols = self.grid
            if not (rows >= 1 and cols >= 1):
                raise OptionError(f"grid {rows}x{cols} needs at least one row and one column")
            names = self.panels or LAYOUTS[self.layout][0]
            if rows * cols < len(names):
                fewer = " or fewer --panels" if self.panels else ""
                raise OptionError(f"grid {rows}x{cols} has {rows * cols} cells for {len(names)} panels "
                                  f"({', '.join(names)}); give a larger --grid{fewer}")
        if self.layout == "dnc" and self.head is not None:
            raise OptionError("layout dnc draws every head; it takes no --head (layout grid draws one head's "
                              "weightings, layout addressing one head's stages)")
        kind, index = self.head_choice
        if kind is not None and self.layout != "addressing":
            raise OptionError(f"head {self.head!r} names a kind of head, which only layout addressing draws; the "
                              f"{self.layout} layout takes a head number ({index})")
        if self.layout in OWN_PANELS and (self.panels or self.grid):
            raise OptionError(f"layout {self.layout} draws its own panels, one above the other; it takes no "
                              f"{'--panels' if self.panels else '--grid'}")
        if self.figsize is not None and not (self.figsize[0] > 0 and self.figsize[1] > 0):
            raise OptionError(f"figure size {self.figsize[0]:g}x{self.figsize[1]:g} must be positive")
        if self.layout == "addressing":
            from .anatomy import anatomy_figsize

            check_pixels(self.figsize or anatomy_figsize(self, True), self.dpi)
        elif self.layout == "dnc":
            from .dnc import dnc_figsize

            check_pixels(self.figsize or dnc_figsize(self, True, 1, 1), self.dpi)
        else:
            check_pixels(self.figsize or default_figsize(self.grid or LAYOUTS[self.layout][1], self, True), self.dpi)
        if isinstance(self.locations, str) and self.locations not in ("auto", "all"):
            raise OptionError(f"locations {self.locations!r}: use auto, all or START:STOP")
        for name, (lo, hi) in self.limits.items():
            if lo is not None and hi is not None and not lo < hi:
                raise OptionError(f"limits for {name}: {lo:g}:{hi:g} is empty; LOW must be below HIGH")
        return self
