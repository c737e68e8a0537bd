"""Loading still images safely: any common format in, RGB uint8 out, hostile files rejected.

The pixel count is checked from the header, before a single pixel is decoded, so a small file
that declares a huge canvas (a decompression bomb) costs nothing.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from avatar_forcing.errors import InputError


@dataclass(frozen=True)
class ImageLimits:
    max_pixels: int = 40_000_000  # a 7k x 5.7k photo; far beyond any portrait we need
    max_bytes: int = 100 * 1024 * 1024
    background: tuple[int, int, int] = (255, 255, 255)  # transparent pixels are composited onto this


DEFAULT_LIMITS = ImageLimits()
LUMA = np.array([0.299, 0.587, 0.114], np.float32)  # RGB -> luminance (ITU-R BT.601)


def load_image(source: str | Path | bytes, max_pixels: int | None = None,
               limits: ImageLimits = DEFAULT_LIMITS) -> np.ndarray:
    """Read an image file (or its bytes) as an ``(H, W, 3)`` RGB ``uint8`` array.

    Grayscale, palette, 16-bit and alpha images are converted (alpha is composited onto
    ``limits.background``). Non-images, truncated files and images of more than ``max_pixels``
    pixels raise :class:`InputError`.
    """
    max_pixels = limits.max_pixels if max_pixels is None else max_pixels
    data, name = _read_bytes(source, limits.max_bytes)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))  # lazy: reads the header only
            width, height = image.size
            if width <= 0 or height <= 0:
                raise InputError(f"{name} has an empty canvas ({width}x{height})")
            if width * height > max_pixels:
                raise InputError(f"{name} is {width}x{height}: more pixels than the limit of {max_pixels}")
            image.load()
            return to_rgb(image, limits.background)
    except InputError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InputError(f"{name} declares more pixels than the limit of {max_pixels}") from None
    except UnidentifiedImageError:
        raise InputError(f"{name} is not a readable image") from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:  # truncated or corrupt data
        raise InputError(f"{name} is corrupt or truncated: {exc}") from None


def to_rgb(image: Image.Image, background: tuple[int, int, int] = DEFAULT_LIMITS.background) -> np.ndarray:
    """Convert any Pillow image mode to an RGB uint8 array."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # 16/32-bit grayscale: scale the full range down to 8 bits instead of clipping.
        arr = np.asarray(image, np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or arr.max() > 255 else 255.0
        gray = np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(gray[:, :, None], 3, axis=2))
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)
    if has_alpha:
        rgba = image.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (*background, 255))
        image = Image.alpha_composite(canvas, rgba)
    return np.ascontiguousarray(np.asarray(image.convert("RGB"), np.uint8))


def _read_bytes(source: str | Path | bytes, max_bytes: int) -> tuple[bytes, str]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        name = "image data"
    else:
        path = Path(source)
        name = str(path)
        if not path.is_file():
            raise InputError(f"image file not found: {path}")
        if path.stat().st_size > max_bytes:
            raise InputError(f"{path} is larger than {max_bytes} bytes")
        data = path.read_bytes()
    if not data:
        raise InputError(f"{name} is empty")
    if len(data) > max_bytes:
        raise InputError(f"{name} is larger than {max_bytes} bytes")
    return data, name


def fit_height(rgb: np.ndarray, height: int) -> np.ndarray:
    """Scale to ``height`` rows keeping the aspect ratio (even width, as video encoders need)."""
    h, w = rgb.shape[:2]
    if h == height:
        return rgb
    import cv2

    width = max(2, 2 * round(w * height / h / 2))
    interp = cv2.INTER_AREA if height < h else cv2.INTER_CUBIC
    return cv2.resize(rgb, (width, height), interpolation=interp)
