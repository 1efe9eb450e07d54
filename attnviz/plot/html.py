"""The interactive view: a Scene (or several) as one self-contained HTML page.

The page holds the figure as decided in Python: each panel's cells as colour indices (exactly
what the PNG paints), the value each cell stands for (for the readout), and the labels, ticks,
crop, title and markers of the Scene. Its script (``web/view.js``) and style are inlined; nothing is
fetched, so the page works from ``file://`` with no network.
"""

from __future__ import annotations

import base64
import html
import json
from importlib import resources

import numpy as np

from .colors import MASK_RGBA, NONFINITE_RGBA, SEQUENTIAL, WRAP_ALPHA, lut, lut_index
from .plan import Scene, Ticks, pixel_size


def _b64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array).tobytes()).decode("ascii")


def _ticks(t: Ticks) -> dict:
    """An axis's ticks as the Scene decided them (the page draws these, not ticks of its own)."""
    return {"at": list(t.positions), "labels": list(t.labels), "steps": list(t.steps), "wraps": list(t.wraps)}


def _panel_entry(p, rect, scene: Scene) -> dict:
    """One panel of a frame: its cells as colour indices and values, labels, ticks and rows."""
    entry = {"title": p.title, "ylabel": p.ylabel, "present": p.values is not None, "time": list(p.time),
             "rows": list(map(int, p.rows)), "modulo": p.modulo, "cmap": p.plan.cmap,
             "xticks": _ticks(p.xticks), "yticks": _ticks(p.yticks),
             "size": list(pixel_size(rect, scene.figsize, scene.opts.dpi))}
    if p.values is not None:
        entry.update(cols=int(p.values.shape[0]), nrows=int(p.values.shape[1]),
                     index=_b64(lut_index(p.values, p.vmin, p.vmax).astype(np.uint8)),
                     value=_b64((p.values if p.raw is None else p.raw).astype("<f4")), vmin=p.vmin, vmax=p.vmax,
                     unscored=None if p.unscored is None else _b64(p.unscored.astype(np.uint8)))
        if p.nonfinite:  # the cells drawn in the non-finite colour, and their legend
            entry.update(nonfinite=_b64((~np.isfinite(p.values)).astype(np.uint8)), nonfinite_label=p.nonfinite)
        if p.locations is not None:  # rows in written order: each row's location
            entry["names"] = [str(int(v)) for v in p.locations]
        elif p.row_names:  # named rows (read modes)
            entry["names"] = list(p.row_names)
    return entry


def _links_entry(links: dict, cmap: str) -> dict:
    """The link matrices of a Scene (dnc.link_cells) for the page: colour indices, and where they are
    not finite."""
    if "omitted" in links:
        return {"omitted": links["omitted"]}
    values = links["values"]
    out = {"locations": links["locations"].tolist(), "rows": {o: r.tolist() for o, r in links["rows"].items()},
           "steps": links["steps"].tolist(), "heads": links["heads"], "cmap": cmap,
           "index": _b64(lut_index(values, 0.0, 1.0).astype(np.uint8))}
    if not np.isfinite(values).all():
        out["nonfinite"] = _b64((~np.isfinite(values)).astype(np.uint8))
    return out


def scene_payload(scene: Scene, label: str = "") -> dict:
    """One frame of the page: what view.js draws for this Scene. A Scene with an ``alternate`` (its
    locations in the other order) gives each location panel an ``alt``: the page's order toggle swaps
    them; one with ``links`` gives the link matrix of each column's step."""
    rects = scene.rects()
    panels = [_panel_entry(p, own, scene) for p, own in zip(scene.panels, rects, strict=True)]
    meta = scene.source_meta or {}
    payload = {"title": scene.suptitle, "grid": list(scene.grid), "markers": list(scene.markers), "panels": panels,
               "panel_size": list(pixel_size(rects[0], scene.figsize, scene.opts.dpi)),
               "label": label or (scene.suptitle or ""), "step": meta.get("step"), "sequences": meta.get("sequences")}
    if scene.alternate is not None:
        payload.update(order=scene.opts.order, alt_order=scene.alternate.opts.order)
        for entry, p, q, own in zip(panels, scene.panels, scene.alternate.panels, rects, strict=True):
            if p.of_locations and p.values is not None:
                entry["alt"] = _panel_entry(q, own, scene.alternate)
    if scene.links is not None:
        p = next((p for p in scene.panels if p.of_locations), None)
        payload["links"] = _links_entry(scene.links, p.plan.cmap if p else SEQUENTIAL)
    if hasattr(scene, "page_extras"):  # a figure of its own kind (anatomy's readout of each step)
        scene.page_extras(payload)
    return payload


def page(scenes: list[Scene], labels: list[str] | None = None, curves: dict | None = None, fps: float = 2.0,
         title: str = "attnviz") -> str:
    """The page for one Scene, or several (a slider steps through them), with a run's curves."""
    frames = [scene_payload(s, (labels or [""] * len(scenes))[k]) for k, s in enumerate(scenes)]
    return frames_page(frames, scenes[0].opts.reduce, curves, fps, title)


def frames_page(frames: list[dict], reduce: str, curves: dict | None = None, fps: float = 2.0,
                title: str = "attnviz") -> str:
    """The page for frames made by scene_payload (and extended: a comparison's sections)."""
    cmaps = {p["cmap"] for f in frames for p in f["panels"]} | {f["links"]["cmap"] for f in frames
                                                                 if "cmap" in f.get("links", {})}
    data = {"frames": frames, "luts": {c: _b64(lut(c)[:, :3]) for c in sorted(cmaps)}, "mask": list(MASK_RGBA),
            "nonfinite": list(NONFINITE_RGBA),
            "wrapAlpha": WRAP_ALPHA, "reduce": reduce, "fps": fps, "curves": curves}
    web = resources.files("attnviz.plot") / "web"
    script, style = (web / "view.js").read_text(), (web / "view.css").read_text()
    payload = json.dumps(data, separators=(",", ":")).replace("</", "<\\/")
    curves_html = '<canvas id="curves" width="640" height="200" aria-label="learning curve"></canvas>' if curves else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<meta name="generator" content="attnviz"><style>{style}</style></head>
<body>
{curves_html}
<div id="controls"><button id="play" type="button" aria-label="play the snapshots in turn">Play</button>
<label>snapshot <input id="frame" type="range" min="0" max="0" value="0" aria-label="snapshot"></label>
<span id="frame-label"></span></div>
<div id="order" hidden role="radiogroup" aria-label="order of the location rows">Locations:
<label><input type="radio" name="order" value="index"> by number</label>
<label><input type="radio" name="order" value="written"> in the order written</label></div>
<div id="links" hidden><canvas id="link-matrix" aria-label="the link matrix of the step pointed at"></canvas></div>
<div id="attnviz" tabindex="0" aria-label="attention trace; arrow keys move the cursor"></div>
<div id="readout" aria-live="polite"></div>
<p class="help">Point at a cell to read it; wheel: zoom time (with Shift: rows); drag: pan; double-click: reset;
arrow keys: move the cursor.</p>
<script>window.ATTNVIZ = {payload};</script>
<script>{script}</script>
</body></html>
"""


def inline(scene: Scene) -> str:
    """The page for one Scene in an ``<iframe srcdoc>``: how a notebook shows it inline (scripts and
    styles stay apart from the notebook's own, and nothing is fetched)."""
    return inline_page(page([scene]), int(scene.figsize[1] * scene.opts.dpi * 1.25 + 140))


def inline_page(text: str, height: int) -> str:
    """A page in an ``<iframe srcdoc>`` of this height in pixels."""
    return (f'<iframe srcdoc="{html.escape(text)}" title="attnviz interactive view" '
            f'style="width: 100%; height: {height}px; border: 0"></iframe>')
