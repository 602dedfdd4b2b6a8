"""What a photo of an incident must be: a JPEG, PNG or WebP image — judged by its content,
never by its name or the type its sender claims — of at most a deployment's size limit.

No I/O: the bytes are decoded in memory with Pillow (the header to learn the format and the
size, :meth:`PIL.Image.Image.verify` for the chunks, then the pixels — a JPEG at an eighth of
its size, which is quick and still reads every byte), so a text file named
``x.jpg``, a truncated upload or an image bomb is refused before anything is stored.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

# Pillow's format name → the media type the photo is stored and served as
MEDIA_TYPES: dict[str, str] = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
EXTENSIONS: dict[str, str] = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp"}
MAX_PIXELS = 50_000_000  # a 50-megapixel camera; more is an image bomb, not a photo
MAX_PHOTOS = 6  # photos sent with one report or one step


class PhotoError(ValueError):
    """A photo refused; ``status`` is the HTTP answer (413 too large, 415 not an image)."""

    status = 415


class PhotoTooLarge(PhotoError):
    status = 413


class NotAnImage(PhotoError):
    status = 415


@dataclass(frozen=True)
class Photo:
    """A checked photo, ready to be stored."""

    data: bytes
    media_type: str
    width: int
    height: int
    sha256: str

    @property
    def extension(self) -> str:
        return EXTENSIONS[self.media_type]


def check_photo(data: bytes, *, name: str = "photo", max_bytes: int) -> Photo:
    """*data* as a :class:`Photo` when it is a whole JPEG, PNG or WebP image of at most
    *max_bytes*.

    Raises
    ------
    PhotoTooLarge
        Over *max_bytes*, or more than :data:`MAX_PIXELS` pixels.
    NotAnImage
        Empty, not an image, an image of another format, or a damaged one.

    Examples
    --------
    >>> png = bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4"
    ...                     "890000000d49444154789c6360606060000000050001a5f64540000000004945"
    ...                     "4e44ae426082")
    >>> p = check_photo(png, max_bytes=1000)
    >>> p.media_type, p.width, p.height
    ('image/png', 1, 1)
    >>> check_photo(b"GIF89a...", max_bytes=1000)
    Traceback (most recent call last):
    ...
    gridmap.domain.photos.NotAnImage: photo is not a JPEG, PNG or WebP image
    >>> check_photo(png, max_bytes=10)
    Traceback (most recent call last):
    ...
    gridmap.domain.photos.PhotoTooLarge: photo is 70 bytes, more than the 10 bytes allowed
    """
    if len(data) > max_bytes:
        raise PhotoTooLarge(f"{name} is {len(data)} bytes, more than the {max_bytes} bytes "
                            "allowed")
    if not data:
        raise NotAnImage(f"{name} is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=list(MEDIA_TYPES)) as image:
                fmt, (width, height) = image.format, image.size
                if width * height > MAX_PIXELS:
                    raise PhotoTooLarge(f"{name} has {width}×{height} pixels, more than "
                                        f"{MAX_PIXELS // 1_000_000} megapixels")
                image.verify()  # the chunks and their checksums
            with Image.open(io.BytesIO(data), formats=list(MEDIA_TYPES)) as image:
                image.draft("RGB", (max(1, width // 8), max(1, height // 8)))  # JPEG: 1/8 scale
                image.load()  # every byte decoded: a truncated file fails here
    except PhotoError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise PhotoTooLarge(f"{name} has more than {MAX_PIXELS // 1_000_000} megapixels") from None
    except UnidentifiedImageError:
        raise NotAnImage(f"{name} is not a JPEG, PNG or WebP image") from None
    except Exception as exc:  # Pillow raises what the decoder meets (SyntaxError, OSError, …)
        raise NotAnImage(f"{name} is a damaged image ({str(exc)[:100] or type(exc).__name__})"
                         ) from None
    if fmt not in MEDIA_TYPES:
        raise NotAnImage(f"{name} is not a JPEG, PNG or WebP image")
    return Photo(data=data, media_type=MEDIA_TYPES[fmt], width=width, height=height,
                 sha256=hashlib.sha256(data).hexdigest())
