"""Reading `init_image` and `mask`: base64, data: URLs, and http(s) URLs where enabled.

Every failure is a BadRequest naming the field. Guards, in order:
- URLs only when the worker enables them, and never to private, loopback, link-local or
  other non-public addresses (the host is resolved and every address checked first, with
  podium.net's policy; redirects are followed by hand and checked the same way);
- at most `ImageLimits.max_bytes` of encoded image (checked on the base64 length, the
  Content-Length header and while streaming);
- at most `max_side` pixels per side, checked from the image header before any pixel is
  decoded, so a small file that expands to gigapixels (a decompression bomb) is refused
  cheaply; PIL's own bomb check is turned into the same error as a second line.

Known gap: the address is checked, then httpx resolves the name again to connect, so a DNS
server that answers differently the second time (DNS rebinding) is not stopped.
"""

from __future__ import annotations

import base64
import binascii
import io
import socket
import warnings
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

from PIL import Image, ImageOps, UnidentifiedImageError

from podium.codec import ascii_digits
from podium.errors import BadRequest
from podium.net import is_public_url
from podium.sd.schema import FIELDS

__all__ = ["ImageLimits", "crop_to_multiple", "load_image"]

_MAX_REDIRECTS = 3


@dataclass(frozen=True, slots=True)
class ImageLimits:
    max_bytes: int = 8 * 1024 * 1024
    max_side: int = int(FIELDS["width"].maximum or 1024)  # the largest output side
    fetch_timeout_s: float = 10.0


def load_image(
    source: str, *, name: str, allow_urls: bool, limits: ImageLimits = ImageLimits()
) -> Image.Image:
    """Decode `source` (base64, data: URL, or http(s) URL) into a loaded RGB image."""
    if source.startswith(("http://", "https://")):
        if not allow_urls:
            raise BadRequest(
                f"`{name}` is a URL, but this worker does not fetch URLs; "
                "send the image as base64 or a data: URL."
            )
        data = _fetch(source, name=name, limits=limits)
    else:
        data = _decode_base64(source, name=name, limits=limits)
    return _open(data, name=name, limits=limits)


def crop_to_multiple(image: Image.Image, multiple: int) -> Image.Image:
    """Center-crop so that both sides are multiples of `multiple` (SD latents need 8)."""
    w, h = image.size
    cw, ch = w - w % multiple, h - h % multiple
    if (cw, ch) == (w, h):
        return image
    left, top = (w - cw) // 2, (h - ch) // 2
    return image.crop((left, top, left + cw, top + ch))


# --- sources --------------------------------------------------------------------------------


def _decode_base64(source: str, *, name: str, limits: ImageLimits) -> bytes:
    text = source
    if text.startswith("data:"):
        header, sep, text = text.partition(",")
        if not sep or not header.endswith(";base64"):
            raise BadRequest(f"`{name}` is a data: URL without ';base64,'; send base64 data.")
    text = "".join(text.split())  # line-wrapped base64 is common
    if len(text) * 3 // 4 > limits.max_bytes:
        raise BadRequest(_too_big(name, len(text) * 3 // 4, limits))
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadRequest(f"`{name}` is not valid base64 ({exc}).") from exc


def _fetch(url: str, *, name: str, limits: ImageLimits) -> bytes:
    import httpx  # only workers that fetch URLs need it

    with httpx.Client(timeout=limits.fetch_timeout_s, follow_redirects=False) as client:
        for _ in range(_MAX_REDIRECTS + 1):
            _require_public(url, name=name)
            try:
                with client.stream("GET", url) as response:
                    if response.is_redirect and "location" in response.headers:
                        url = urljoin(url, response.headers["location"])
                        continue
                    if response.status_code != 200:
                        raise BadRequest(
                            f"`{name}`: fetching the URL answered HTTP {response.status_code}."
                        )
                    return _read_limited(response, name=name, limits=limits)
            except httpx.HTTPError as exc:
                raise BadRequest(f"`{name}`: fetching the URL failed ({exc}).") from exc
    raise BadRequest(f"`{name}`: the URL redirected more than {_MAX_REDIRECTS} times.")


def _read_limited(response: Any, *, name: str, limits: ImageLimits) -> bytes:
    """The body of an httpx streaming response, refused as soon as it passes the limit."""
    length = response.headers.get("content-length", "")
    if ascii_digits(length) and int(length) > limits.max_bytes:
        raise BadRequest(_too_big(name, int(length), limits))
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > limits.max_bytes:
            raise BadRequest(_too_big(name, size, limits))
        chunks.append(chunk)
    return b"".join(chunks)


def _require_public(url: str, *, name: str) -> None:
    """Refuse URLs whose host is, or resolves to, a non-public address."""
    parts = urlsplit(url)
    host = parts.hostname
    refused = BadRequest(
        f"`{name}`: {host!r} is a private, loopback or link-local address; "
        "image URLs must point to the public internet."
    )
    if not host:
        raise BadRequest(f"`{name}` is not a valid URL.")
    if parts.scheme not in ("http", "https"):
        raise BadRequest(f"`{name}` must be an http(s) URL, got {parts.scheme}://.")
    if not is_public_url(url):  # a literal private IP: no resolution needed
        raise refused
    try:
        infos = socket.getaddrinfo(host, parts.port or 443, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise BadRequest(f"`{name}`: cannot resolve {host!r} ({exc}).") from exc
    for info in infos:
        address = str(info[4][0])
        literal = f"[{address}]" if ":" in address else address
        if not is_public_url(f"http://{literal}/"):
            raise refused


# --- decoding -------------------------------------------------------------------------------


def _open(data: bytes, *, name: str, limits: ImageLimits) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image: Image.Image = Image.open(io.BytesIO(data))  # reads the header only
            w, h = image.size
            if max(w, h) > limits.max_side:
                raise BadRequest(
                    f"`{name}` is {w}×{h} pixels; the largest side this worker accepts is "
                    f"{limits.max_side}. Scale it down and send it again."
                )
            image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise BadRequest(f"`{name}` has too many pixels to decode safely ({exc}).") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise BadRequest(f"`{name}` is not an image PIL can read ({exc}).") from exc
    image = ImageOps.exif_transpose(image)
    return image.convert("RGB")


def _too_big(name: str, size: int, limits: ImageLimits) -> str:
    return (
        f"`{name}` is about {_size(size)}; the limit is {_size(limits.max_bytes)}. "
        "Send a smaller or more compressed image."
    )


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 100_000 else f"{n / 1e3:.1f} KB"
