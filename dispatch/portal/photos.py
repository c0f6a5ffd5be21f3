"""Photos citizens send with a request: checked, re-encoded, and stripped of their location.

A photo is accepted only if Pillow reads it as JPEG, PNG or WebP (whatever the browser claimed
its type was), within the byte and pixel limits. It is then re-encoded, which drops everything
but the pixels and the few EXIF fields below: a phone's photo carries the place it was taken
(GPS), the phone's make and serial number and the time, and a department has no need of them.
The GPS block is kept only when the citizen ticked "include the photo's location".
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from hotline.core.errors import AppError

FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
MAX_PIXELS = 40_000_000  # a 40-megapixel phone camera; more is a decompression bomb
MAX_SIDE = 2560  # stored no larger: plenty to see a pothole, a fraction of the bytes
GPS_IFD = 0x8825


@dataclass(frozen=True)
class CleanPhoto:
    content_type: str
    data: bytes
    width: int
    height: int
    location_kept: bool


def clean(raw: bytes, *, max_bytes: int, keep_location: bool) -> CleanPhoto:
    """The photo re-encoded without metadata (GPS only if ``keep_location``), upright, at most
    ``MAX_SIDE`` pixels on its long side; ``portal.bad_photo`` / ``portal.photo_too_large``
    for anything else."""
    if len(raw) > max_bytes:
        raise AppError(
            "portal.photo_too_large",
            f"a photo may be at most {max_bytes // (1024 * 1024) or 1} MB",
            status_code=413,
            limit=max_bytes,
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(raw))
            fmt = image.format
            if fmt not in FORMATS:
                raise AppError("portal.bad_photo", "photos must be JPEG, PNG or WebP images")
            if image.width * image.height > MAX_PIXELS:
                raise AppError("portal.bad_photo", "the photo has too many pixels")
            exif = image.getexif()
            gps = exif.get_ifd(GPS_IFD) if keep_location else {}
            image.load()
    except AppError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Warning) as exc:
        raise AppError("portal.bad_photo", "the file is not a readable image") from exc
    # Turned upright by its orientation tag, so the tag can go with the rest.
    image = ImageOps.exif_transpose(image)
    image.thumbnail((MAX_SIDE, MAX_SIDE))
    kept = Image.Exif()
    if gps:
        kept[GPS_IFD] = gps
    out = io.BytesIO()
    if fmt == "JPEG":
        if image.mode not in ("RGB", "L"):
            image = image.convert("RGB")
        image.save(out, "JPEG", quality=85, exif=kept.tobytes() if gps else b"")
    elif fmt == "PNG":
        image.save(out, "PNG", optimize=False)  # PNG photos carry no GPS worth keeping
    else:
        image.save(out, "WEBP", quality=85, exif=kept.tobytes() if gps else b"")
    return CleanPhoto(
        content_type=FORMATS[fmt],
        data=out.getvalue(),
        width=image.width,
        height=image.height,
        location_kept=bool(gps),
    )
