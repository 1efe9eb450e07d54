"""How the default colormap reads: lightness, contrast, and under simulated colour-vision deficiencies.

    python benchmarks/colormap.py

Prints, for the ``attnviz`` colormap as seen with normal vision and with full-severity
deuteranopia, protanopia and tritanopia (the linear-RGB matrices of Machado, Oliveira and
Fernandes, 2009): CIE L* at 0, 0.25, 0.5, 0.75 and 1, whether L* rises all the way, and the
WCAG contrast between the colours of 0 and 1; and the same contrast for turbo and viridis.
"""

from __future__ import annotations

import numpy as np

from attnviz.plot.colors import CVD_SIMULATIONS, contrast, get_cmap, lightness, simulate


def main() -> None:
    rgb = get_cmap("attnviz").resampled(256)(np.linspace(0, 1, 256))[:, :3]
    print("| vision | L* at 0, 0.25, 0.5, 0.75, 1 | L* rises all the way | contrast 0 vs 1 | colour of 0, of 1 |")
    print("|---|---|---|---:|---|")
    for name, matrix in CVD_SIMULATIONS.items():
        seen = simulate(rgb, matrix)
        L = lightness(seen)
        at = ", ".join(f"{L[i]:.1f}" for i in (0, 64, 128, 191, 255))
        rises = "yes" if np.all(np.diff(L) > 0) else f"no (smallest step {np.diff(L).min():.2f})"
        ends = ", ".join("#" + "".join(f"{round(255 * c):02x}" for c in seen[i]) for i in (0, -1))
        print(f"| {name} | {at} | {rises} | {contrast(seen[0], seen[-1]):.1f}:1 | {ends} |")
    for other in ("turbo", "viridis"):
        t = get_cmap(other)(np.linspace(0, 1, 256))[:, :3]
        print(f"{other}: contrast 0 vs 1 {contrast(t[0], t[-1]):.1f}:1")


if __name__ == "__main__":
    main()
