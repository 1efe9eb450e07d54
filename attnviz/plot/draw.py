"""The matplotlib back end: a Scene as a Figure (SVG, PDF, ``plot_trace``), and ``draw_panel``.

Object API only (``Figure``, ``Axes``), never pyplot's global state. Also draws the raster's
frames: the same figure with the cells left out (``paint=False``).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, replace

import numpy as np

from .colors import LUT_SIZE, MASK_RGBA, NONFINITE_RGBA, SEQUENTIAL, WRAP_ALPHA, get_cmap
from .options import PlotOptions
from .plan import TITLE_TOP, Scene, build_scene
from .source import Source

MARKER_STYLE = {"color": "white", "lw": 1.0, "ls": (0, (4, 4))}
WRAP_STYLE = {"color": "white", "alpha": WRAP_ALPHA, "lw": 0.72}  # where location numbers wrap from N-1 to 0


def draw_panel(ax, data, *, title: str | None = None, cmap=SEQUENTIAL, norm=None, vmin=None, vmax=None,
               center=None, mask=None, colorbar: bool = False, cbar_ax=None, start=(0, 0), extent=None,
               xlabel: str = "Time", ylabel: str = "Location", fontsize: float | None = None, **imshow_kw):
    """Draw a (T, rows) matrix as a Time x rows heatmap into ``ax``, as ``seaborn.heatmap`` would.

    ``data`` is any array-like (numpy, lists, tensors) with time on axis 0; rows run upwards.
    ``cmap`` is a colormap name or object; ``norm`` a matplotlib Normalize (else ``vmin``/``vmax``,
    symmetric about ``center`` when given). ``mask`` (same shape, or one flag per step) draws
    those cells in the mask colour; NaN and infinities are drawn over everything in the non-finite
    colour (a second image, above the first), and the colour scale comes from the finite values.
    ``start`` is the (step, row) of data[0, 0]; ``extent`` overrides it. Other keywords go to
    ``imshow``. Returns (AxesImage, Colorbar or None).
    """
    from matplotlib.ticker import MaxNLocator

    from ..trace import as_array

    values = np.asarray(as_array(data), dtype=np.float64)
    if values.ndim != 2:
        raise ValueError(f"draw_panel takes a (T, rows) matrix, not shape {values.shape}")
    T, rows = values.shape
    bad = ~np.isfinite(values)
    hidden = bad if bad.any() else None  # drawn over by the non-finite image; masked below it
    if mask is not None:
        m = np.asarray(as_array(mask), bool)
        m = np.broadcast_to(m[:, None] if m.ndim == 1 else m, values.shape)
        hidden = m if hidden is None else (m | hidden)
    if hidden is not None:
        values = np.ma.masked_array(np.where(bad, 0.0, values), hidden)
    if center is not None and norm is None:
        finite = np.ma.masked_array(values, bad).compressed()  # and unmasked
        span = max(abs((vmax if vmax is not None else (finite.max() if finite.size else center)) - center),
                   abs((vmin if vmin is not None else (finite.min() if finite.size else center)) - center)) or 1.0
        vmin, vmax = center - span, center + span
    colormap = get_cmap(cmap).with_extremes(bad=np.array(MASK_RGBA) / 255)
    t0, r0 = start
    kw = {"origin": "lower", "aspect": "auto", "interpolation": "nearest",
          "extent": extent or (t0 - 0.5, t0 + T - 0.5, r0 - 0.5, r0 + rows - 0.5), **imshow_kw}
    if norm is None:
        kw.update(vmin=vmin, vmax=vmax)
    image = ax.imshow(values.T, cmap=colormap, norm=norm, **kw)
    if bad.any():
        over = np.zeros(bad.T.shape + (4,), np.uint8)
        over[bad.T] = NONFINITE_RGBA
        ax.imshow(over, **{k: v for k, v in kw.items() if k in ("origin", "aspect", "interpolation", "extent")})
    if title is not None:
        ax.set_title(title, fontsize=fontsize)
    ax.set_xlabel(xlabel, fontsize=fontsize)
    ax.set_ylabel(ylabel, fontsize=fontsize)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=6))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True, nbins=5))
    if fontsize:
        ax.tick_params(labelsize=fontsize * 0.8)
    cbar = None
    if colorbar:
        cbar = ax.figure.colorbar(image, cax=cbar_ax) if cbar_ax is not None else ax.figure.colorbar(image, ax=ax)
        if fontsize:
            cbar.ax.tick_params(labelsize=fontsize * 0.8)
    return image, cbar


@dataclass
class PlotResult:
    """A drawn figure, its panels' Axes, and their artists by panel title; ``warnings``: panels
    left empty."""

    figure: object
    axes: list
    images: dict[str, object]
    colorbars: dict[str, object]
    warnings: list[str]
    scene: Scene | None = None

    def _repr_png_(self) -> bytes:
        """A notebook that shows no HTML shows the figure."""
        with default_style():
            return figure_bytes(self.figure, "png", self.scene.opts.transparent if self.scene else False)

    def _repr_html_(self) -> str | None:
        """A notebook shows the interactive view inline (no network needed)."""
        from .html import inline

        return inline(self.scene) if self.scene is not None else None


def draw_scene(scene: Scene, paint: bool = True) -> PlotResult:
    """The Scene as a matplotlib Figure. ``paint=False`` leaves the cells out (the raster's frame)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.transforms import ScaledTranslation

    o = scene.opts
    fig = Figure(figsize=scene.figsize, dpi=o.dpi)
    FigureCanvasAgg(fig)
    if o.transparent:
        fig.patch.set_alpha(0.0)
    if scene.suptitle and paint:  # the raster paints its own title strip (raster.title_strip)
        draw_title(fig, scene.suptitle, o)
    images, cbars, axes = {}, {}, []
    s = o.fontsize / 10
    for p, rect in zip(scene.panels, scene.rects(), strict=True):
        ax = fig.add_axes(rect)
        axes.append(ax)
        (t0, t1), (y0, y1) = p.time, p.rows
        ax.set_xlim(t0 - 0.5, t1 - 0.5)
        ax.set_ylim(y0 - 0.5, y1 - 0.5)
        if p.values is None:
            ax.set_title(p.title, fontsize=o.fontsize)
            if getattr(p, "xlabel", ""):  # the lowest panel of a stack: the time axis of all, even empty
                ax.set_xticks(p.xticks.positions, p.xticks.labels, fontsize=o.fontsize * 0.8)
                ax.set_xlabel(p.xlabel, fontsize=o.fontsize)
            else:
                ax.set_xticks([])
            ax.set_yticks([])
            ax.text(0.5, 0.5, getattr(p, "empty", "not recorded"), transform=ax.transAxes, ha="center",
                    va="center", fontsize=o.fontsize, color="0.45")
            continue
        cbar_ax = None
        colorbar = o.colorbar and getattr(p, "has_colorbar", True)  # (not beside a bar strip or a gate strip)
        if colorbar:
            x, y, w, h = rect
            cbar_ax = fig.add_axes((x + w + 0.08 * s / scene.figsize[0], y, 0.12 * s / scene.figsize[0], h))
        image, cbar = draw_panel(
            ax, p.values, title=p.title, cmap=get_cmap(p.plan.cmap).resampled(LUT_SIZE), vmin=p.vmin, vmax=p.vmax,
            mask=p.unscored, colorbar=colorbar, cbar_ax=cbar_ax, extent=(t0 - 0.5, t1 - 0.5, y0 - 0.5, y1 - 0.5),
            xlabel=getattr(p, "xlabel", "Time"), ylabel=p.ylabel, fontsize=o.fontsize)
        for axis, ticks in ((ax.xaxis, p.xticks), (ax.yaxis, p.yticks)):  # as the Scene decided them
            axis.set_ticks(ticks.positions, ticks.labels)
        if not getattr(p, "time_labels", True):
            ax.tick_params(axis="x", labelbottom=False)
        if p.nonfinite:
            nonfinite_legend(ax, p.nonfinite, o.fontsize)
        if paint:
            ink = getattr(p, "ink", None)  # a light panel's markers (anatomy's bar strips)
            for step in scene.markers:
                ax.axvline(step - 0.5, **{**MARKER_STYLE, **({"color": ink} if ink else {})})
            below = ScaledTranslation(0, -0.5 / o.dpi, fig.dpi_scale_trans)  # half a pixel: the row raster paints
            for row in p.yticks.wraps:
                ax.plot((0, 1), (row, row), transform=ax.get_yaxis_transform() + below, **WRAP_STYLE)
        else:
            for drawn in ax.images:
                drawn.set_visible(False)  # the raster paints cells and markers itself
        images[p.title] = image
        if cbar is not None:
            cbars[p.title] = cbar
    for x, y, text in getattr(scene, "notes", ()):  # lines of text below the panels (paper.py's priority fit)
        fig.text(x, y, text, fontsize=o.fontsize * 0.8, ha="left", va="top")
    return PlotResult(fig, axes, images, cbars, scene.warnings, scene)


def nonfinite_legend(ax, label: str, fontsize: float):
    """A swatch of the non-finite colour and its words ("NaN, +inf") under the panel's right end,
    level with the axis label "Time" (centred: the right end is free, whatever the panel's title)."""
    from matplotlib.patches import Patch
    from matplotlib.transforms import ScaledTranslation

    below = (7 + 1.2 * 0.8 * fontsize + 4) / 72  # inches: ticks and their pads, the tick labels, the label's pad
    swatch = Patch(facecolor=np.array(NONFINITE_RGBA) / 255, edgecolor="0.3", linewidth=0.5, label=label)
    return ax.legend(handles=[swatch], loc="upper right", bbox_to_anchor=(1.0, 0.0), frameon=False,
                     bbox_transform=ax.transAxes + ScaledTranslation(0, -below, ax.figure.dpi_scale_trans),
                     fontsize=fontsize * 0.8, handlelength=1.0, handleheight=1.0, handletextpad=0.4,
                     borderpad=0.0, borderaxespad=0.0)


def draw_title(fig, text: str, opts: PlotOptions):
    """A figure's title: centred, its top TITLE_TOP inches below the figure's top."""
    return fig.suptitle(text, fontsize=opts.fontsize * 1.1, va="top",
                        y=1 - TITLE_TOP * opts.fontsize / 10 / fig.get_figheight())


def plot_trace(trace, options: PlotOptions | None = None, **kw) -> PlotResult:
    """Draw a Trace as the paper's grid of heatmaps. Keyword arguments set PlotOptions fields.

    Returns a PlotResult: the Figure, and the AxesImage (and Colorbar) of every panel.
    """
    opts = replace(options or PlotOptions(), **kw).validated()
    for name in opts.cmap_names:
        get_cmap(name)  # an unknown colormap fails before any reading
    return draw_scene(build_scene(Source.of_trace(trace, opts), opts, page=True))  # (a notebook shows the page)


SAVE_KW = {
    "png": {"metadata": {"Software": "attnviz"}},
    "svg": {"metadata": {"Date": None, "Creator": "attnviz"}},
    "pdf": {"metadata": {"CreationDate": None, "ModDate": None, "Creator": "attnviz", "Producer": "attnviz"}},
}


def figure_bytes(fig, fmt: str, transparent: bool = False) -> bytes:
    """Save a Figure to bytes, reproducibly: no dates, fixed SVG ids."""
    import matplotlib

    buf = io.BytesIO()
    with matplotlib.rc_context({"svg.hashsalt": "attnviz", "svg.fonttype": "path"}):
        fig.savefig(buf, format=fmt, transparent=transparent, **SAVE_KW[fmt])
    return buf.getvalue()


def default_style():
    """matplotlib's default style: the same figure whatever the local matplotlibrc says."""
    import matplotlib.style

    return matplotlib.style.context("default")


def vector_bytes(scene: Scene, fmt: str) -> bytes:
    """SVG or PDF of a Scene, in matplotlib's default style as the PNG frames are."""
    with default_style():
        return figure_bytes(draw_scene(scene).figure, fmt, scene.opts.transparent)
