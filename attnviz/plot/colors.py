"""The figure's colours: the ``attnviz`` colormap, the colour of unscored cells, colormap lookup.

``attnviz`` runs from dark blue (low) through violet to bright red (high) with CIE lightness rising
all the way, so the strongest weight is the most visible thing in a panel: the colours of 1.0 and
0.0 differ by a WCAG contrast of 6.1:1 (turbo's: 1.4:1), and by at least 4:1 for colour-blind
readers too (CVD_SIMULATIONS). ``attnviz.register_colormap()`` (also
called by every attnviz drawing function) registers it, and ``attnviz_r``, with matplotlib, so that
any matplotlib code can then ask for it by name.
"""

from __future__ import annotations

import numpy as np

from ..errors import OptionError, did_you_mean

SEQUENTIAL = "attnviz"  # weightings, outputs, erases: 0 is dark blue, 1 bright red
DIVERGING = "RdBu_r"  # signed panels (adds, reads): blue below 0, white at 0, red above
ANCHORS = ((0.0, "#060d38"), (0.30, "#2447c0"), (0.55, "#8a44c0"), (0.78, "#df3a6a"), (1.0, "#ff5a48"))
MASK_RGBA = (221, 221, 221, 255)  # unscored output steps: light grey, outside every colormap
# NaN and infinities (a model that diverged): bright green, far from every colour of ``attnviz``,
# ``RdBu_r`` and the mask grey for every reader (at least 32 CIE76 units under CVD_SIMULATIONS:
# docs/figure.md). It wins over the mask grey and, in a block of cells, over every finite value.
NONFINITE_RGBA = (0, 255, 0, 255)
NONFINITE_NAME = "bright green"
WRAP_ALPHA = 0.45  # the line where location numbers wrap from N-1 to 0: white, this opaque over the cells
LUT_SIZE = 256


def register_colormap() -> None:
    """Register the ``attnviz`` colormap (and ``attnviz_r``) with matplotlib, once."""
    from matplotlib import colormaps
    from matplotlib.colors import LinearSegmentedColormap

    if SEQUENTIAL not in colormaps:
        cmap = LinearSegmentedColormap.from_list(SEQUENTIAL, ANCHORS, LUT_SIZE)
        colormaps.register(cmap)
        colormaps.register(cmap.reversed())


def get_cmap(cmap):
    """A matplotlib Colormap from a name or a Colormap; an unknown name suggests the closest ones."""
    from matplotlib import colormaps
    from matplotlib.colors import Colormap

    register_colormap()
    if isinstance(cmap, Colormap):
        return cmap
    try:
        return colormaps[cmap]
    except KeyError:
        hint = did_you_mean(cmap, colormaps) or "; see matplotlib's colormap list"
        raise OptionError(f"unknown colormap {cmap!r}{hint}") from None


def lut(cmap) -> np.ndarray:
    """The colormap as LUT_SIZE RGBA rows (uint8): what both back ends paint a value with."""
    table = get_cmap(cmap).resampled(LUT_SIZE)(np.linspace(0, 1, LUT_SIZE))
    return (table * 255 + 0.5).astype(np.uint8)


def lut_index(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Row of the LUT for each value, as matplotlib's Normalize and Colormap pick it: floor of
    the normalised value times LUT_SIZE, clipped (in floats first: 1e30 stays the top colour)."""
    span = hi - lo
    x = (values - lo) / span if span > 0 else np.zeros_like(values, dtype=np.float64)
    # fmax and fmin clip as np.clip does and take NaN to row 0 (infinities to an end row): the back
    # ends paint those cells NONFINITE_RGBA
    return np.fmin(np.fmax(x * LUT_SIZE, 0), LUT_SIZE - 1).astype(np.int64)


def nonfinite_label(values: np.ndarray) -> str | None:
    """The legend of the cells drawn in NONFINITE_RGBA: the kinds of non-finite value among
    ``values`` ("NaN", "NaN, +inf", ...), or None when every value is finite."""
    if np.isfinite(values).all():
        return None
    tests = (("NaN", np.isnan), ("+inf", np.isposinf), ("-inf", np.isneginf))
    return ", ".join(word for word, test in tests if test(values).any())


def relative_luminance(rgb: np.ndarray) -> np.ndarray:
    """WCAG relative luminance of sRGB colours in [0, 1] (last axis: R, G, B)."""
    c = np.asarray(rgb, np.float64)
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return linear @ np.array([0.2126, 0.7152, 0.0722])


def lightness(rgb: np.ndarray) -> np.ndarray:
    """CIE L* (0 black to 100 white) of sRGB colours in [0, 1]."""
    y = relative_luminance(rgb)
    f = np.where(y > 216 / 24389, np.cbrt(y), (24389 / 27 * y + 16) / 116)
    return 116 * f - 16


def lab(rgb: np.ndarray) -> np.ndarray:
    """CIE L*a*b* (D65) of sRGB colours in [0, 1] (last axis: R, G, B)."""
    c = np.asarray(rgb, np.float64)
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    xyz = linear @ np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]).T
    xyz = xyz / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > 216 / 24389, np.cbrt(xyz), (24389 / 27 * xyz + 16) / 116)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], axis=-1)


def contrast(rgb_a, rgb_b) -> float:
    """WCAG contrast ratio of two sRGB colours (1 to 21)."""
    a, b = sorted((float(relative_luminance(rgb_a)), float(relative_luminance(rgb_b))))
    return (b + 0.05) / (a + 0.05)


# Colour-vision deficiencies at full severity, as linear-RGB matrices (Machado, Oliveira and
# Fernandes, 2009): how a colormap reads for every reader (benchmarks/colormap.py, docs/figure.md).
CVD_SIMULATIONS = {
    "normal vision": np.eye(3),
    "deuteranopia": np.array([[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413],
                              [-0.011820, 0.042940, 0.968881]]),
    "protanopia": np.array([[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216],
                            [-0.003882, -0.048116, 1.051998]]),
    "tritanopia": np.array([[1.255528, -0.076749, -0.178779], [-0.078411, 0.930809, 0.147602],
                            [0.004733, -0.691367, 1.687635]]),
}


def simulate(rgb: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """sRGB colours in [0, 1] as seen with the colour vision of one of CVD_SIMULATIONS."""
    rgb = np.asarray(rgb, np.float64)
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    out = np.clip(linear @ matrix.T, 0, 1)
    return np.where(out <= 0.0031308, 12.92 * out, 1.055 * out ** (1 / 2.4) - 0.055)
