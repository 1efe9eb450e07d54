"""How the default colormap reads: lightness, contrast, and under simulated colour-vision deficiencies.

    python benchmarks/colormap.py

Prints, for the ``attnviz`` colormap as seen with normal vision and with full-severity
deuteranopia, protanopia and tritanopia (the linear-RGB matrices of Machado, Oliveira and
Fernandes, 2009): CIE L* at 0, 0.25, 0.5, 0.75 and 1, whether L* rises all the way, and the
WCAG contrast between the colours of 0 and 1; and the same contrast for turbo and viridis. Then,
for the colour of NaN and infinities, its CIE76 distance to the nearest colour of ``attnviz``, of
``RdBu_r`` and to the mask grey, and how it looks, for each kind of vision.
"""

from __future__ import annotations

import numpy as np

from attnviz.plot.colors import (
    CVD_SIMULATIONS,
    MASK_RGBA,
    NONFINITE_RGBA,
    contrast,
    get_cmap,
    lab,
    lightness,
    lut,
    simulate,
)


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
    green = np.array(NONFINITE_RGBA[:3]) / 255
    print("\n| vision | NaN/inf colour seen as | nearest `attnviz` | nearest `RdBu_r` | mask grey |")
    print("|---|---|---:|---:|---:|")
    for name, matrix in CVD_SIMULATIONS.items():
        seen = simulate(green, matrix)
        far = [np.linalg.norm(lab(simulate(lut(m)[:, :3] / 255, matrix)) - lab(seen), axis=-1).min()
               for m in ("attnviz", "RdBu_r")]
        grey = np.linalg.norm(lab(simulate(np.array(MASK_RGBA[:3]) / 255, matrix)) - lab(seen))
        colour = "#" + "".join(f"{round(255 * c):02x}" for c in seen)
        print(f"| {name} | {colour} (L* {float(lightness(seen)):.1f}) | {far[0]:.0f} | {far[1]:.0f} | {grey:.0f} |")


if __name__ == "__main__":
    main()
