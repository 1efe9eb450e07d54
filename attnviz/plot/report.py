"""attnviz compare's page: the runs' table, their curves (hover: run, step, value) and their last
snapshots, each linking to that run's own interactive page, written beside the report. Offline:
everything is inlined, nothing is fetched."""

from __future__ import annotations

import base64
import html
import json
from importlib import resources
from pathlib import Path

from ..compare import COLUMNS, THRESHOLDS
from .compare import GROUP_COLOURS, display_names, log_floor

RUN_PAGES = "{stem}_runs"  # the folder of run pages beside report.html


def thumbnail_png(snapshot, fontsize: float = 8) -> bytes:
    """A run's last write and read weightings side by side, as a small PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from .colors import SEQUENTIAL
    from .compare import _crop
    from .draw import default_style, draw_panel, figure_bytes

    name, w, r = snapshot
    with default_style():
        fig = Figure(figsize=(2.4, 1.5), dpi=100)
        FigureCanvasAgg(fig)
        for k, (what, data) in enumerate((("write", w), ("read", r))):
            ax = fig.add_axes((0.03 + k * 0.5, 0.14, 0.44, 0.84))
            draw_panel(ax, data[:, _crop(w, r)], cmap=SEQUENTIAL, vmin=0, vmax=1, xlabel="", ylabel="")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_xlabel(what, fontsize=fontsize, labelpad=1)
        return figure_bytes(fig, "png")


def write_report(result: dict, path, snapshots: dict, max_bytes=None, allow_external: bool = False,
                 fps: float = 4.0) -> list[Path]:
    """The report page at ``path`` and, in PATH_runs/, each run's own page. Returns the paths written."""
    from ..io import atomic_path
    from .animate import snapshots as list_snapshots
    from .options import PlotOptions
    from .run import TRACES_FILE, read_metrics, run_page

    path = Path(path)
    folder = path.with_name(RUN_PAGES.format(stem=path.stem))
    runs = result["runs"]
    names = dict(zip((r["run"] for r in runs), display_names([r["run"] for r in runs]), strict=True))
    written, links, thumbs = [], {}, {}
    opts = PlotOptions().validated()
    for r in runs:
        snap = snapshots.get(r["run"])
        if snap is None:
            continue
        thumbs[r["run"]] = base64.b64encode(thumbnail_png(snap)).decode("ascii")
        run_dir = Path(r["run"])
        items = list_snapshots([run_dir / TRACES_FILE], max_bytes, allow_external)
        folder.mkdir(parents=True, exist_ok=True)
        page_path = folder / (names[r["run"]].replace("/", "_") + ".html")
        run_page(run_dir, page_path, read_metrics(run_dir / "metrics.csv"), items, opts, fps, max_bytes,
                 allow_external)
        written.append(page_path)
        links[r["run"]] = f"{folder.name}/{page_path.name}"
    with atomic_path(path) as tmp:
        tmp.write_text(report_html(result, names, thumbs, links))
    return [path, *written]


def _cell(v) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "yes" if v else "no"
    return f"{v:,}" if isinstance(v, int) else str(v)


def report_html(result: dict, names: dict, thumbs: dict, links: dict) -> str:
    groups = list(dict.fromkeys(c["group"] for c in result["curves"]))
    colour = {g: GROUP_COLOURS[i % len(GROUP_COLOURS)] for i, g in enumerate(groups)}
    curves = [{"name": names[c["run"]], "group": c["group"], "colour": colour[c["group"]],
               "steps": [int(v) for v in c["steps"]], "sequences": [int(v) for v in c["sequences"]],
               "seconds": [round(float(v), 2) for v in c["seconds"]], "wrong": [float(v) for v in c["values"]]}
              for c in result["curves"]]
    hi, lo = result.get("thresholds", THRESHOLDS)
    label = result.get("label", "held-out wrong bits per sequence")
    floor = log_floor(result.get("judge", "wrong_bits"), result["curves"], lo)
    payload = json.dumps({"runs": curves, "threshold": lo, "label": label, "floor": floor},
                         separators=(",", ":")).replace("</", "<\\/")
    web = resources.files("attnviz.plot") / "web"
    style, script = (web / "view.css").read_text(), (web / "report.js").read_text()
    esc = html.escape
    shown = [c for c in result.get("columns", COLUMNS) if c not in ("run", "task")]
    head = "".join(f"<th>{esc(c.replace('_', ' '))}</th>" for c in ["run", *shown])
    rows = []
    for r in result["runs"]:
        cells = "".join(f"<td>{esc(_cell(r[c]))}</td>" for c in shown)
        name = esc(names[r["run"]])
        link = f'<a href="{esc(links[r["run"]])}">{name}</a>' if r["run"] in links else name
        rows.append(f"<tr><td>{link}</td>{cells}</tr>")
    group_lines = []
    for g in result["groups"]:
        line = f"{g['group']}: converged {g['converged']} of {g['runs']}"
        k = f"to_below_{lo:g}"
        if g[f"median_seconds_{k}"] is not None:
            line += (f"; to below {lo:g}, median {g[f'median_sequences_{k}']:,.0f} sequences "
                     f"(quartiles {g[f'q1_sequences_{k}']:,.0f}-{g[f'q3_sequences_{k}']:,.0f}), "
                     f"{g[f'median_seconds_{k}']:.1f} s ({g[f'q1_seconds_{k}']:.1f}-"
                     f"{g[f'q3_seconds_{k}']:.1f})")
        group_lines.append(f'<li style="color:{colour.get(g["group"], "#111")}">{esc(line)}</li>')
    cards = []
    for r in result["runs"]:
        if r["run"] not in thumbs:
            continue
        state = "converged" if r["converged"] else r["state"]
        img = f'<img alt="last snapshot of {esc(names[r["run"]])}" src="data:image/png;base64,{thumbs[r["run"]]}">'
        cards.append(f'<figure><a href="{esc(links[r["run"]])}">{img}</a><figcaption style="color:'
                     f'{colour.get(r["group"], "#111")}">{esc(names[r["run"]])}: {esc(state)}</figcaption></figure>')
    title = f"{result['task']}: {len(result['runs'])} run(s)"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>attnviz compare: {esc(title)}</title>
<meta name="generator" content="attnviz"><style>{style}
table {{ border-collapse: collapse; font-size: 12px; margin: 8px 0; }}
th, td {{ padding: 2px 8px; text-align: right; border-bottom: 1px solid #ddd; }}
th:first-child, td:first-child {{ text-align: left; }}
.curves {{ display: flex; gap: 16px; flex-wrap: wrap; }}
.thumbs {{ display: flex; gap: 12px; flex-wrap: wrap; }}
figure {{ margin: 0; font-size: 12px; }}
</style></head>
<body>
<h1>{esc(title)}</h1>
<p class="help">{esc(label[0].upper() + label[1:])}; sequences seen and training seconds until the first of 10
evaluations in a row below {hi:g} and below {lo:g}. Each run's name links to its own page.</p>
<ul>{"".join(group_lines)}</ul>
<table><thead><tr>{head}</tr></thead><tbody>
{"".join(rows)}
</tbody></table>
<div class="curves"><canvas id="by-sequences" width="560" height="260" aria-label="{esc(label)} against
sequences seen"></canvas><canvas id="by-seconds" width="560" height="260" aria-label="{esc(label)} against
training time"></canvas></div>
<div id="curve-readout" class="help" aria-live="polite">Point at a curve to read it.</div>
<h2 style="font-size:14px;font-weight:normal">Last snapshot of each run: write and read weightings of head 0</h2>
<div class="thumbs">{"".join(cards)}</div>
<script>window.ATTNVIZ_REPORT = {payload};</script>
<script>{script}</script>
</body></html>
"""
