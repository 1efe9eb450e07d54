"""Which memory locations a location panel draws, bottom to top: the crop, and the order.

The location panels of a figure (the write and read weightings, usage, the allocation and
precedence weightings, the addressing stages' weightings) share one arrangement of rows:

- index order (``order="index"``, the default): a run of locations in "unwrapped" row coordinates
  y0..y1, modulo N, as ``plan.memory_rows`` crops and rolls it, or an explicit ``--locations``
  window;
- written order (``order="written"``): the locations sorted by the step of their first strong write
  (``analysis.first_strong_writes``: a write weight of at least 0.5, or half its head's peak for a
  head that never reaches 0.5), then those never written strongly, in index order; rows 0..n-1,
  each labelled with its true location number. With ``locations="auto"`` only the locations in use
  are drawn (weight above 0.05 in a weighting at some step; every location when none is), with
  ``"all"`` every one, with a window ``A:B`` the window's, reordered.

In written order a copy learned by allocation, written to scattered locations, is drawn as the
same diagonal as an NTM's walk.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..analysis import written_order
from .options import PlotOptions


@dataclass(frozen=True, eq=False)
class Rows:
    """The rows of a figure's location panels.

    ``span``: row coordinates [y0, y1); ``columns``: the column of the cells as read that each row
    shows (None: the cells as read); ``locations``: in written order, each row's location (None: index
    order, where a row coordinate modulo N is its location); ``written``: in written order, how many
    rows, from the bottom, hold locations that were written strongly."""

    span: tuple[int, int]
    N: int
    columns: np.ndarray | None = None
    locations: np.ndarray | None = None
    written: int = 0

    @property
    def modulo(self) -> int | None:
        return None if self.locations is not None else self.N

    def take(self, values: np.ndarray) -> np.ndarray:
        """The cells (time, columns as read) of a location panel, one column per row."""
        return values if self.columns is None else values[:, self.columns]

    def label(self) -> str:
        """The y label: "Location", with "(13 of 128)" when cropped; "Location (write order)" when sorted
        (the tick labels give the locations; a longer label would not fit beside a panel)."""
        n = self.span[1] - self.span[0]
        if self.locations is not None:
            return "Location (write order)"
        return "Location" if n >= self.N else f"Location ({n} of {self.N})"

    def ticks(self, height: int, opts: PlotOptions):
        """In written order, ticks at every k-th row (k from NICE's steps: as many labels as the panel's
        ``height`` pixels hold at the tick labels' size), labelled with the rows' true locations, and a
        faint line above the last row written strongly; None in index order (plan.axis_ticks)."""
        from .plan import Ticks, _ladder

        if self.locations is None:
            return None
        n = len(self.locations)
        label = 1.5 * 0.8 * opts.fontsize * opts.dpi / 72  # tick labels, 0.8 x the font, 1.5 lines apart
        most = max(2, int(height // label))
        steps = _ladder(n)
        step = next(s for s in steps if -(-n // s) <= most)
        at = tuple(range(0, n, step))
        return Ticks(at, tuple(str(int(self.locations[k])) for k in at), tuple(s for s in reversed(steps) if s <= step),
                     (self.written - 0.5,) if 0 < self.written < n else ())


def arrange(source, opts: PlotOptions, peaks: np.ndarray | None, dwell: np.ndarray | None, band=None,
            crop=None) -> tuple[Rows, list[str]]:
    """The rows of the figure's location panels, and a warning when they cannot be in the order asked.

    ``peaks`` and ``dwell`` are each location's peak and summed weight over the window (None when the
    cells do not hold one column per location); ``band`` imposes the rows: (y0, y1) in index order
    (an animation's frames share one), or Rows. ``crop(peaks, dwell, locations)`` picks index order's
    rows (default: plan.memory_rows)."""
    N = source.locations
    if isinstance(band, Rows):
        return band, []
    warnings = []
    if opts.order == "written" and band is None:
        width = source.columns[1] - source.columns[0] if source.columns else N
        from .source import FULL_ROWS

        if width > FULL_ROWS:
            warnings.append(str(source.error(f"the order written needs at most {FULL_ROWS:,} locations to sort; "
                                             f"{width:,} are drawn in index order (--locations A:B draws fewer)")))
        else:
            return written_rows(source, opts, peaks), warnings
    if band is None and opts.locations in ("auto", "all") and peaks is not None:
        if crop is None:
            from .plan import memory_rows as crop
        band = crop(peaks, dwell, opts.locations, source.circular)
    if band is not None:
        return Rows(tuple(band), N, np.arange(*band) % N), warnings
    return Rows(tuple(source.columns) if source.columns else (0, N), N), warnings


def written_rows(source, opts: PlotOptions, peaks: np.ndarray | None) -> Rows:
    """Written order's rows (see the module's docstring)."""
    from .plan import USED

    N = source.locations
    first = source.first_writes()
    order, written = written_order(first)  # positions in the cells' columns
    if source.columns is None and opts.locations == "auto" and peaks is not None and (peaks > USED).any():
        keep = peaks[order] > USED
        order, written = order[keep], int(keep[:written].sum())
    start = source.columns[0] if source.columns else 0
    return Rows((0, len(order)), N, order, (order + start) % N, written)
