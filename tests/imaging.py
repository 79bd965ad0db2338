"""Pixel checks shared by the viewer and video tests."""

import numpy as np


def arm_pixels(rgb: np.ndarray) -> int:
    """Pixels of the Reacher arm's blue-teal links (rgba 0 0.4 0.6): strong blue and green, no red.

    The olive table, pink rim, red target, grey base, white text and black background all fail it; a
    480x480 frame of the arm has about 900 such pixels, the same frame with the arm hidden none.
    """
    r, g, b = (rgb[..., i].astype(int) for i in range(3))
    return int(((b > 90) & (b - r > 60) & (g - r > 30)).sum())
