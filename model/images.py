"""Diagram images: open safely, normalise to RGB on white, and size them for Qwen2.5-VL through qwen-vl-utils.

Uploads are hostile: the pixel count is read from the header and checked BEFORE any decoding, so a
decompression bomb costs a few hundred bytes of reading, never gigabytes of RAM.
"""

from __future__ import annotations

import base64
import io
import os
from dataclasses import dataclass
from pathlib import Path

# Qwen2.5-VL sees 28x28-pixel cells (14 px patches merged 2x2); one cell is one visual token in the LLM.
CELL = 28

# Geometry diagrams are small line drawings (GeoQA's are ~150-400 px a side) whose information is thin
# strokes and one-letter labels ~10 px high. The floor upscales small diagrams to at least ~224x224 so a
# label spans whole patches instead of being averaged into one; the cap keeps at most 640 visual tokens
# (~700x700 px), which still resolves every label of a textbook figure while leaving the prompt budget
# to the retrieved theorems and the answer. Photos of whiteboards may want more: raise max_pixels.
DEFAULT_MIN_PIXELS = 64 * CELL * CELL
DEFAULT_MAX_PIXELS = 640 * CELL * CELL
# Anything above this many decoded pixels is refused from its header, before decoding (JPEG is first decoded
# at a reduced scale instead). 16 Mpx (4000x4000, more than a 12 Mpx phone photo) decodes to 64 MB as RGBA and
# peaks near 150 MB with the RGB copy; 8000x8000, a 249 KB PNG, would take 734 MB of the server for one upload.
DEFAULT_MAX_SOURCE_PIXELS = 16_000_000
DEFAULT_MAX_FILE_BYTES = 32 * 1024 * 1024
_BOMB_ADVICE = "refused before decoding (decompression-bomb guard); downscale it to a few thousand pixels a side"


class ImageError(ValueError):
    """An image that cannot be used. The message says which input, what was wrong, and what to do."""


@dataclass(frozen=True)
class ImageOptions:
    min_pixels: int = DEFAULT_MIN_PIXELS
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_source_pixels: int = DEFAULT_MAX_SOURCE_PIXELS
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES

    def __post_init__(self):
        if not 0 < self.min_pixels <= self.max_pixels:
            raise ValueError(
                f"ImageOptions: need 0 < min_pixels <= max_pixels, got min_pixels={self.min_pixels}, "
                f"max_pixels={self.max_pixels}"
            )


def _read_source(source, options: ImageOptions) -> tuple[bytes | None, object | None, str]:
    """Return (raw bytes, already-open PIL image, label for messages)."""
    from PIL import Image

    if isinstance(source, Image.Image):
        return None, source, "image object"
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        label = "uploaded image bytes"
    elif isinstance(source, str) and source.startswith("data:"):
        header, _, payload = source.partition(",")
        if ";base64" not in header or not header.startswith("data:image/"):
            raise ImageError(f"image data URL must look like data:image/...;base64,... (got {header[:40]!r})")
        try:
            data = base64.b64decode(payload, validate=True)
        except ValueError as exc:
            raise ImageError(f"image data URL has invalid base64: {exc}") from exc
        label = "image data URL"
    elif isinstance(source, (str, os.PathLike)):
        text = str(source)
        path = Path(text[7:] if text.startswith("file://") else text).expanduser()
        label = f"image file {path}"
        if not path.is_file():
            raise ImageError(f"{label} does not exist (or is not a file); check the path")
        size = path.stat().st_size
        if size > options.max_file_bytes:
            raise ImageError(
                f"{label} is {size / 1e6:.1f} MB, above the {options.max_file_bytes / 1e6:.0f} MB limit; "
                "save it as a smaller PNG or JPEG"
            )
        data = path.read_bytes()
    else:
        raise ImageError(f"unsupported image input of type {type(source).__name__}; pass a path, bytes or PIL image")
    if not data:
        raise ImageError(f"{label} is empty (0 bytes); upload the diagram again")
    if len(data) > options.max_file_bytes:
        raise ImageError(
            f"{label} is {len(data) / 1e6:.1f} MB, above the {options.max_file_bytes / 1e6:.0f} MB limit; "
            "save it as a smaller PNG or JPEG"
        )
    return data, None, label


def open_image(source, options: ImageOptions | None = None):
    """Open a path, bytes, data URL or PIL image as an RGB PIL image, refusing bombs before decoding."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    options = options or ImageOptions()
    data, image, label = _read_source(source, options)
    if image is None:
        try:
            # Image.open reads only the header; pixels are decoded later by .load().
            image = Image.open(io.BytesIO(data))
        except UnidentifiedImageError as exc:
            raise ImageError(
                f"{label} is not an image Pillow can read ({len(data)} bytes, starts with {data[:8]!r}); "
                "upload a PNG, JPEG, GIF, BMP or WebP diagram"
            ) from exc
        except Image.DecompressionBombError as exc:
            # Pillow refuses headers above 2 x Image.MAX_IMAGE_PIXELS itself, before reading any pixels.
            raise ImageError(f"{label} is too large to decode ({exc}); {_BOMB_ADVICE}") from exc
        except (OSError, ValueError) as exc:
            raise ImageError(f"{label} could not be opened: {exc}") from exc

    width, height = image.size
    if width <= 0 or height <= 0:
        raise ImageError(f"{label} has no pixels ({width}x{height})")
    if width * height > options.max_source_pixels:
        if getattr(image, "format", None) == "JPEG":
            # JPEG decodes straight at 1/2, 1/4 or 1/8 scale, so a huge photo costs no more than a small one.
            # draft() picks the strongest reduction that still covers the requested size: ask for exactly that.
            reduction = next((r for r in (2, 4, 8) if (width / r) * (height / r) <= options.max_source_pixels), 8)
            image.draft("RGB", (-(-width // reduction), -(-height // reduction)))
            width, height = image.size
        if width * height > options.max_source_pixels:
            raise ImageError(
                f"{label} is {width}x{height} pixels ({width * height / 1e6:.3g} Mpx), above the "
                f"{options.max_source_pixels / 1e6:.3g} Mpx limit; {_BOMB_ADVICE}"
            )
    try:
        image.load()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ImageError(f"{label} is corrupt or truncated and could not be decoded: {exc}") from exc
    try:
        image = ImageOps.exif_transpose(image)  # phone photos of diagrams carry their rotation in EXIF
    except (OSError, ValueError, SyntaxError):
        pass  # a broken EXIF block is not worth refusing the picture for
    return to_rgb_on_white(image)


def to_rgb_on_white(image):
    """Flatten any mode to RGB; transparent areas become white (diagrams are drawn on paper, not on black)."""
    from PIL import Image

    if image.mode == "RGB":
        return image
    if image.mode == "P":
        image = image.convert("RGBA") if "transparency" in image.info else image.convert("RGB")
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # 16-bit and float greyscale: rescale to 8 bits instead of clipping everything to white.
        low, high = image.getextrema()
        span = (high - low) or 1
        image = image.point(lambda v: (v - low) * 255.0 / span).convert("L")
    if image.mode in ("LA", "PA", "La", "RGBa"):
        image = image.convert("RGBA")
    if image.mode == "RGBA":
        canvas = Image.new("RGB", image.size, (255, 255, 255))
        canvas.paste(image, mask=image.getchannel("A"))
        return canvas
    return image.convert("RGB")


def load_image(source, options: ImageOptions | None = None):
    """Open `source` safely and resize it with qwen-vl-utils to a multiple of 28 px within min/max_pixels."""
    from qwen_vl_utils import fetch_image

    options = options or ImageOptions()
    image = open_image(source, options)
    width, height = image.size
    if max(width, height) / min(width, height) > 200:
        raise ImageError(
            f"image is {width}x{height}: aspect ratio above 200:1 cannot be split into vision patches; crop it"
        )
    # fetch_image applies Qwen's smart_resize (multiples of 28, pixel count within the bounds, aspect kept).
    return fetch_image({"image": image, "min_pixels": options.min_pixels, "max_pixels": options.max_pixels})


def image_to_data_url(image, fmt: str = "PNG") -> str:
    """Encode a PIL image as a data URL for OpenAI-compatible servers (PNG keeps thin lines crisp)."""
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return f"data:image/{fmt.lower()};base64,{base64.b64encode(buffer.getvalue()).decode('ascii')}"
