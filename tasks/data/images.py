"""One image decoder for every path: lmms-eval hooks, the VLMEvalKit dataset and export, the CLIP baselines, prepare.

Every consumer must see the same pixels or the same error for the same file, so decoding lives here:

* **Fully decoded**: the whole file is read when it is opened, and a truncated file is an error,
  whatever ``PIL.ImageFile.LOAD_TRUNCATED_IMAGES`` says (lmms-eval switches it on for the whole
  process, which would silently grey-fill the missing part).
* **EXIF orientation applied** (``ImageOps.exif_transpose``): a photo is shown upright, as viewers show it.
* **Modes converted correctly to RGB**: 16-bit greyscale (``I;16``, ``I``) is scaled by 1/257 (a plain
  ``convert("RGB")`` clips it to nearly white), float images by their range; palette, RGBA, CMYK and
  greyscale through PIL's own conversion.
* **Decompression bombs** (PIL's limit, ``Image.MAX_IMAGE_PIXELS``) are a named error, not a crash.

:func:`decoder_changes` says when a file's decoded pixels are not what a plain ``Image.open(f).convert("RGB")``
gives (16-bit, EXIF orientation, CMYK, palette); the VLMEvalKit export then writes the decoded pixels as PNG,
so models that open the exported file themselves see what this decoder gives.
"""

from __future__ import annotations

import io
import os
import threading
from pathlib import Path

from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

_FLAG_LOCK = threading.Lock()


class ImageDecodeError(ValueError):
    """An image cannot be decoded (corrupt, truncated, too large, not an image); the message says why."""


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        import numpy as np

        values = np.asarray(image, dtype=np.float64)
        scale = 257.0 if image.mode.startswith("I;16") or values.max(initial=0) > 255 else 1.0
        grey = np.clip(np.rint(values / scale), 0, 255).astype(np.uint8)
        return Image.fromarray(grey, mode="L").convert("RGB")
    if image.mode == "F":
        import numpy as np

        values = np.asarray(image, dtype=np.float64)
        top = 1.0 if values.max(initial=0) <= 1.0 else 255.0
        grey = np.clip(np.rint(values / top * 255.0), 0, 255).astype(np.uint8)
        return Image.fromarray(grey, mode="L").convert("RGB")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    return image.convert("RGB")


def decode_image(source: bytes | str | os.PathLike | Image.Image) -> Image.Image:
    """Decode image bytes, a file or a PIL image to an upright RGB image, or raise :class:`ImageDecodeError`."""
    if isinstance(source, Image.Image):
        return _to_rgb(ImageOps.exif_transpose(source))
    try:
        handle = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else Path(source)
        with Image.open(handle) as image:
            with _FLAG_LOCK:  # the flag is process-wide: decoding threads (an input pipeline) take turns
                previous = ImageFile.LOAD_TRUNCATED_IMAGES
                ImageFile.LOAD_TRUNCATED_IMAGES = False  # a truncated file is an error here, whoever set the flag
                try:
                    image.load()
                finally:
                    ImageFile.LOAD_TRUNCATED_IMAGES = previous
            upright = ImageOps.exif_transpose(image)
            return _to_rgb(upright)
    except Image.DecompressionBombError as error:
        raise ImageDecodeError(f"the image is larger than PIL's decompression-bomb limit ({error})") from error
    except UnidentifiedImageError as error:
        raise ImageDecodeError("not an image file PIL can read") from error
    except (OSError, SyntaxError, ValueError) as error:  # truncated data, broken headers
        raise ImageDecodeError(f"corrupt or truncated image ({error})") from error


_HIGH_DEPTH = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")


def decoder_changes(data: bytes) -> str | None:
    """Why :func:`decode_image` gives other pixels than a plain ``Image.open(...).convert("RGB")`` of ``data``
    (``"16-bit"``, ``"EXIF orientation 6"``, ``"CMYK"``, ``"palette"``), or None when they agree.

    Reads the header only; call it on bytes :func:`decode_image` has accepted.
    """
    with Image.open(io.BytesIO(data)) as image:
        if image.mode in _HIGH_DEPTH:
            return "16-bit" if image.mode.startswith("I;16") or image.mode == "I" else "floating-point"
        orientation = image.getexif().get(0x0112)  # ExifTags.Base.Orientation
        if orientation not in (None, 1):
            return f"EXIF orientation {orientation}"
        if image.mode == "CMYK":
            return "CMYK"
        if image.mode in ("P", "PA"):
            return "palette"
    return None


def lossless_png(image: Image.Image) -> bytes:
    """``image`` (decoded) as PNG bytes: every pixel kept."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
