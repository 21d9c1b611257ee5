"""A rendered chart as an indexed-colour PNG whose own colours stay exact."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL.Image import Image

# At most this far (in any channel) from a chart colour, a palette entry stands for that colour; further, the
# colour is not in the image and the entry stands for something else.
_SNAP_DISTANCE = 8


def indexed_png(image: Image, exact: Sequence[tuple[int, int, int]]) -> bytes:
    """`image` as an indexed-colour PNG: a third of the bytes of an RGB one, and a sixth of the time to write.

    The octree picks 256 colours for the image; as it gives each the average of the colours it stands for, the
    white background would come out as (254, 254, 254) and a line's own colour a shade off, so the palette entry
    nearest each of the `exact` colours is set to that colour exactly."""
    from PIL import Image as Images

    indexed = image.quantize(256, method=Images.Quantize.FASTOCTREE, dither=Images.Dither.NONE)
    palette = indexed.getpalette() or []
    entries = [tuple(palette[n : n + 3]) for n in range(0, len(palette), 3)]
    for colour in exact:
        nearest = min(range(len(entries)), key=lambda n: _distance(entries[n], colour))
        if _distance(entries[nearest], colour) <= _SNAP_DISTANCE:
            entries[nearest] = colour
    indexed.putpalette([channel for entry in entries for channel in entry])
    buffer = io.BytesIO()
    # Pillow writes no time stamp and no software name, so equal input gives equal bytes.
    indexed.save(buffer, format="PNG", compress_level=6)
    return buffer.getvalue()


def rgb(hex_colour: str) -> tuple[int, int, int]:
    return int(hex_colour[1:3], 16), int(hex_colour[3:5], 16), int(hex_colour[5:7], 16)


def _distance(one: Sequence[int], other: Sequence[int]) -> int:
    return max(abs(a - b) for a, b in zip(one, other, strict=True))
