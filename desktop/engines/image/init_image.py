"""Reading a starting image for img2img from a file of unknown origin (Qt-free).

The Image studio and the ``image --init`` command both read it here, so the GUI never
imports the command line. Huge files are refused before decoding: a JPEG is decoded at
a reduced size, anything above 64 megapixels is refused with its size named.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from desktop.engines.errors import InputFileError, RequestError

MAX_PIXELS = 64_000_000


def load_init_image(path: Path) -> np.ndarray:
    """An HxWx3 uint8 array; InputFileError / RequestError with a readable reason."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    try:
        with Image.open(path) as img:
            img.draft("RGB", (4096, 4096))  # JPEG: decode at a reduced size when huge
            if img.width * img.height > MAX_PIXELS:
                raise RequestError(f"'{path.name}' is {img.width}x{img.height}; starting images above 64 megapixels are refused.")
            return np.asarray(img.convert("RGB"), dtype=np.uint8)
    except FileNotFoundError:
        raise InputFileError(f"No such starting image: '{path}'.") from None
    except IsADirectoryError:
        raise InputFileError(f"'{path}' is a folder; --init needs an image file.") from None
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise RequestError(f"'{path.name}' is not an image this app can read ({exc}).") from None
