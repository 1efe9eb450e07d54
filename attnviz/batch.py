"""Plot many trace files: naming, sharding, worker processes, failures that do not stop the batch."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from . import workers
from .errors import AttnvizError, OptionError
from .framecache import default_dir as default_cache_dir
from .io import open_traces, trace_entries
from .plot.export import check_formats, check_output_name, scene_bytes, write_outputs
from .plot.options import FORMATS, PlotOptions
from .plot.plan import build_scene
from .plot.raster import Renderer
from .plot.source import Source
from .trace import ROOT


@dataclass
class Job:
    """One input file and the traces to draw from it, each with its output base path."""

    file: Path
    traces: list[tuple[str, Path]] = field(default_factory=list)
    error: str | None = None  # the file could not even be listed
    steps: int = 0  # for grouping traces of one geometry together
    page: Path | None = None  # the file's interactive page (every trace of it on one page), if asked for


@dataclass
class BatchResult:
    written: list[Path] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # one line each: file, trace, problem
    warnings: list[str] = field(default_factory=list)  # drawn, but with a panel left empty
    index: Path | None = None  # OUT/index.html, the gallery of a batch written into a folder
    option_failed: bool = False  # a failure was an option the trace cannot meet (--head 3 on one head)

    @property
    def ok(self) -> bool:
        return not self.failures

    def merge(self, other: BatchResult) -> None:
        self.written += other.written
        self.failures += other.failures
        self.warnings += other.warnings
        self.option_failed |= other.option_failed


def safe_name(text: str) -> str:
    """A file name made only of letters, digits, '.', '_' and '-', never '.' or '..'."""
    name = re.sub(r"[^A-Za-z0-9._-]+|\.\.+", "_", text).strip("._")
    return name[:150] or "trace"


def plan(inputs, output=None, out_dir=None, trace: str | None = None, shard: tuple[int, int] = (1, 1),
         max_bytes: int | None = None, allow_external: bool = False) -> list[Job]:
    """Expand inputs (files and folders) into jobs with output names, then keep one shard.

    Output names derive from the file (relative to the folder it was found in) and the
    trace name; they never leave ``out_dir``. Files whose names differ only in their suffix
    keep it (``a.h5``, ``a.npz`` -> ``a_h5.png``, ``a_npz.png``). Sharding is over the sorted
    list of traces, so K/N for K = 1..N covers every trace exactly once.
    """
    entries = []  # (file, base name, why it is not read, if it is not)
    for p in map(Path, inputs):
        for f, error in trace_entries([p], allow_external):  # a folder's own refusal comes under its path
            base = "__".join(f.relative_to(p).with_suffix("").parts) if f != p else p.stem
            entries.append((f, base, error and str(error)))
    if not entries:
        raise AttnvizError("no trace files or folders given")
    suffixes: dict[str, set[str]] = {}
    for file, base, _ in entries:
        suffixes.setdefault(base, set()).add(file.suffix.lower())
    entries = [(file, f"{base}_{file.suffix[1:]}" if len(suffixes[base]) > 1 else base, error)
               for file, base, error in entries]
    jobs, items = [], []
    for file, base, error in entries:
        job, names = Job(file, error=error), []
        try:
            if not error:
                with open_traces(file, max_bytes, allow_external) as f:
                    names = [f.resolve(trace)] if trace is not None else f.names
                    if not names:
                        f.resolve(None)
                    for n in names:  # a trace that cannot be read fails on its own, when drawn
                        with contextlib.suppress(AttnvizError):
                            job.steps = f.info(n).steps
                            break
        except AttnvizError as e:
            job.error = str(e)
            names = []
        jobs.append(job)
        items += [(job, n, base) for n in names] or [(job, None, base)]
    one_page = output is not None and Path(output).suffix.lower() == ".html"  # a file's traces, one page
    drawn = [job for job, name, _ in items if name is not None]  # a refused file is reported, not drawn
    if output is not None and len(drawn) > 1 and not (one_page and len(set(map(id, drawn))) == 1):
        raise AttnvizError(f"--output names one file but there are {len(drawn)} traces to draw; "
                           "use --out-dir (or --trace to pick one)")
    used: dict[str, int] = {}
    K, N = shard
    kept = set()
    for i, (job, name, base) in enumerate(items):
        if i % N == K - 1:
            kept.add(id(job))
        if name is None:
            continue
        stem = safe_name(base if name == ROOT else f"{base}__{name.replace('/', '__')}")
        n = used[stem] = used.get(stem, 0) + 1
        stem = stem if n == 1 else f"{stem}-{n}"
        if output is not None:
            path = Path(output)
        elif out_dir is not None:
            path = Path(out_dir) / stem
        else:
            path = job.file.with_name(stem)
        if i % N == K - 1:
            job.traces.append((name, path))
    for job, base in {id(j): (j, b) for j, _, b in items}.values():  # a page per file, named like its figures
        if len(job.traces) == 1:
            job.page = job.traces[0][1]
        elif job.traces:
            stem = safe_name(base)
            n = used[stem] = used.get(stem, 0) + 1
            stem = stem if n == 1 else f"{stem}-{n}"
            job.page = (Path(output) if output is not None else Path(out_dir) / stem if out_dir is not None
                        else job.file.with_name(stem))
    return [j for j in jobs if id(j) in kept]


_renderer: Renderer | None = None


def _run_job(args) -> BatchResult:
    """Draw every trace of one file (in a worker process or in this one)."""
    global _renderer
    job, opts, formats, max_bytes, allow_external, cache_dir = args
    if _renderer is None or _renderer.opts != opts:
        _renderer = Renderer(opts, cache_dir=cache_dir)
    result = BatchResult()
    if job.error:
        result.failures.append(job.error)
        return result
    pages = []  # (name, scene) for the file's interactive page
    try:
        with open_traces(job.file, max_bytes, allow_external) as f:
            for name, base in job.traces:
                try:
                    suffix = base.suffix.lower().lstrip(".")
                    fmts = formats or [suffix if suffix in FORMATS else "png"]
                    scene = build_scene(Source(f, name, opts), opts, page="html" in fmts)  # read once for all
                    result.warnings += scene.warnings
                    if "html" in fmts:
                        pages.append((name, scene))
                    others = [fmt for fmt in fmts if fmt != "html"]
                    if others:
                        draw = lambda fmt, s=scene: scene_bytes(s, fmt, _renderer)  # noqa: E731
                        result.written += write_outputs(base, others, draw)
                except AttnvizError as e:
                    result.failures.append(str(e))
                    result.option_failed |= isinstance(e, OptionError)
        if pages:
            result.written += write_page(job.page, pages)
    except AttnvizError as e:
        result.failures.append(str(e))
    return result


def write_page(path: Path, pages: list) -> list[Path]:
    """One interactive page for a file's traces (a slider steps through them)."""
    from .plot.html import page

    labels = [name for name, _ in pages]
    title = f"attnviz: {path.with_suffix('').name}"
    return write_outputs(path, ["html"], lambda fmt: page([s for _, s in pages], labels, title=title).encode())


def plot_files(inputs, output=None, out_dir=None, options: PlotOptions | None = None, formats=None,
               trace: str | None = None, jobs: int | None = None, shard: tuple[int, int] = (1, 1),
               max_bytes: int | None = None, on_progress: Callable[[int, int], None] | None = None,
               frame_cache: bool = True, allow_external: bool = False) -> BatchResult:
    """Draw trace files (and folders of them) to PNG, SVG, PDF or interactive HTML pages.

    Without ``output`` or ``out_dir`` each figure lands beside its trace file
    (``trace.h5`` -> ``trace.png``; a file of several traces -> ``trace__NAME.png``).
    A bad file or trace is recorded in ``failures`` and the rest are still drawn.
    ``jobs`` worker processes share the files out (None: one per core; 1: this process only).
    With ``frame_cache`` PNG frames drawn once are kept on disk for the next run
    (see attnviz.framecache; ``ATTNVIZ_CACHE_DIR`` picks or turns off the folder).
    ``allow_external`` lets a trace file lead to other files, and a folder's symbolic links be
    followed (docs/trace-format.md); without it they are failures.
    """
    global _renderer
    opts = (options or PlotOptions()).validated()
    check_formats(formats)  # before any work
    if output is not None:
        check_output_name(output)
    cache_dir = default_cache_dir() if frame_cache else None
    _renderer = Renderer(opts, cache_dir=cache_dir)  # checks the colormaps; forked workers inherit it
    K, N = shard
    if not (N >= 1 and 1 <= K <= N):
        raise OptionError(f"--shard {K}/{N}: K must be between 1 and N")
    if jobs is None:
        jobs = workers.default_jobs()
    elif not jobs >= 1:
        raise OptionError(f"--jobs {jobs}: give 1 or more worker processes")
    if out_dir is not None:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
    todo = plan(inputs, output, out_dir, trace, shard, max_bytes, allow_external)
    todo.sort(key=lambda j: j.steps)  # same geometry together: frames get reused
    work = [(j, opts, formats, max_bytes, allow_external, cache_dir) for j in todo]
    total = len(work)
    result = BatchResult()
    if jobs > 1 and total > 1:
        with workers.pool(min(jobs, total)) as processes:
            done = 0
            for r, n in processes.imap(_run_task, _tasks(work, max(1, total // (jobs * 4)))):
                done += n
                result.merge(r)
                if on_progress:
                    on_progress(done, total)
    else:
        for i, w in enumerate(work, 1):
            result.merge(_run_job(w))
            if on_progress:
                on_progress(i, total)
    if out_dir is not None and output is None:
        result.index = write_index(Path(out_dir), result)
    return result


def write_index(out_dir: Path, result: BatchResult) -> Path:
    """OUT/index.html: every figure of the batch as a thumbnail linking to it and to its other
    formats (the interactive page among them), and the failures. Paths are relative: the folder
    can be moved or uploaded as it is (a CI artifact)."""
    import html

    from .io import atomic_path

    groups: dict[str, dict[str, str]] = {}
    for path in result.written:
        rel = Path(path).resolve().relative_to(out_dir.resolve()).as_posix()
        stem, _, fmt = rel.rpartition(".")
        groups.setdefault(stem, {})[fmt] = rel
    cards = []
    for stem, files in sorted(groups.items()):
        picture = files.get("png") or files.get("svg")
        thumb = (f'<a href="{html.escape(picture)}"><img src="{html.escape(picture)}" alt="{html.escape(stem)}" '
                 'loading="lazy"></a>') if picture else ""
        links = " ".join(f'<a href="{html.escape(rel)}">{fmt}</a>' for fmt, rel in sorted(files.items()))
        cards.append(f'<figure>{thumb}<figcaption>{html.escape(stem)}<br>{links}</figcaption></figure>')
    failures = "".join(f"<li>{html.escape(line)}</li>" for line in result.failures)
    text = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>attnviz: {len(groups)} figures</title>
<meta name="generator" content="attnviz"><style>
body {{ font-family: sans-serif; margin: 16px; }} .gallery {{ display: flex; flex-wrap: wrap; gap: 12px; }}
figure {{ margin: 0; width: 320px; }} img {{ width: 320px; border: 1px solid #ddd; }}
figcaption {{ font-size: 12px; word-break: break-all; }} .failures {{ color: #a00; }}
</style></head><body>
<h1>{len(groups)} figure(s), {len(result.failures)} failure(s)</h1>
{f'<h2>Failures</h2><ul class="failures">{failures}</ul>' if failures else ''}
<div class="gallery">{''.join(cards)}</div>
</body></html>
"""
    path = out_dir / "index.html"
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return path


def _tasks(work: list, size: int) -> list[list]:
    """Consecutive files of one length together, at most ``size`` per task, so that each frame
    is drawn by one worker only (a batch sorted by length has few boundaries between tasks)."""
    tasks: list[list] = []
    for w in work:
        if tasks and tasks[-1][-1][0].steps == w[0].steps and len(tasks[-1]) < size:
            tasks[-1].append(w)
        else:
            tasks.append([w])
    return tasks


def _run_task(task: list) -> tuple[BatchResult, int]:
    result = BatchResult()
    for w in task:
        result.merge(_run_job(w))
    return result, len(task)

