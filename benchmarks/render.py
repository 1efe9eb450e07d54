"""attnviz.render in a training loop: the first call, and each later one with the same options.

    python benchmarks/render.py                        # frames cached on disk as usual
    ATTNVIZ_CACHE_DIR=off python benchmarks/render.py  # no disk cache: the first call draws its frame

Prints the time of the first call in this process and the mean of the next 50, for
sample_traces/copy_len20.h5 at the default options.
"""

from __future__ import annotations

import time
from pathlib import Path

import attnviz

SAMPLE = Path(__file__).resolve().parent.parent / "sample_traces" / "copy_len20.h5"


def main(calls: int = 50) -> None:
    trace = attnviz.load(SAMPLE)
    start = time.perf_counter()
    attnviz.render(trace)
    first = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(calls):
        image = attnviz.render(trace)
    each = (time.perf_counter() - start) / calls
    print(f"{SAMPLE.name}: {image.shape} {image.dtype}; first call {first:.2f} s, then {each * 1000:.1f} ms per call")


if __name__ == "__main__":
    main()
