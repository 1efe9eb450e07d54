"""Drawing traces: one pipeline from options to pixels.

    options  PlotOptions, panels and layouts, validated once
    source   one trace (in memory or in a file) read through the windows, block by block
    plan     every visual decision: panels, geometry, crop, limits, masks, markers -> a Scene
    raster   PNG: a Scene's cells painted into a cached frame
    draw     matplotlib: a Scene as a Figure (SVG, PDF, plot_trace), and draw_panel
    export   Scenes to files, and render: a figure's pixels as an array
    pair     two traces compared: both on one view, and b - a of their weightings
    anatomy  one head's addressing stages, content to final weighting (layout addressing)
    dnc      a DNC's memory: weightings, gates, read modes, usage; the page's link matrices (layout dnc)
    paper    the NTM paper's figure of a task of its own: N-grams, priority sort (layout paper, by task)
    rows     which locations the location panels draw, and in which order (by number, or as written)

matplotlib is imported only by the code that draws with it: a PNG whose frame is cached
needs none of it.
"""

from __future__ import annotations

from .draw import PlotResult, draw_panel, draw_scene, figure_bytes, plot_trace
from .export import export, render, scene_bytes
from .options import FORMATS, LAYOUTS, PANELS, PlotOptions
from .plan import Scene, build_scene
from .raster import Renderer
from .source import MemoryReader, Source

__all__ = ["FORMATS", "LAYOUTS", "PANELS", "MemoryReader", "PlotOptions", "PlotResult", "Renderer", "Scene",
           "Source", "build_scene", "draw_panel", "draw_scene", "export", "figure_bytes", "plot_trace",
           "render", "scene_bytes"]
