"""Decoding init_image / mask (podium.sd.images): base64, data: URLs, guarded URLs, limits."""

from __future__ import annotations

import base64
import socket
from typing import Any

import httpx
import pytest
from PIL import Image

from podium.errors import BadRequest
from podium.sd.images import ImageLimits, crop_to_multiple, load_image
from tests.sd.pngs import data_url, png_b64, png_bytes


def load(source: str, *, allow_urls: bool = False, **limits: int) -> Image.Image:
    return load_image(
        source, name="init_image", allow_urls=allow_urls, limits=ImageLimits(**limits)
    )


def error_of(source: str, **kw: object) -> str:
    with pytest.raises(BadRequest) as info:
        load(source, **kw)  # type: ignore[arg-type]
    return info.value.message


def test_base64() -> None:
    image = load(png_b64(90, 70))
    assert image.size == (90, 70) and image.mode == "RGB"


def test_data_url() -> None:
    assert load(data_url(64, 80)).size == (64, 80)


def test_line_wrapped_base64() -> None:
    text = png_b64(64, 64)
    wrapped = "\n".join(text[i : i + 76] for i in range(0, len(text), 76))
    assert load(wrapped).size == (64, 64)


def test_grayscale_is_converted_to_rgb() -> None:
    assert load(png_b64(64, 64, "L")).mode == "RGB"


def test_not_base64() -> None:
    assert error_of("not base64!").startswith("`init_image` is not valid base64")


def test_not_an_image() -> None:
    source = base64.b64encode(b"hello, not a png").decode()
    assert error_of(source).startswith("`init_image` is not an image PIL can read")


def test_data_url_must_be_base64() -> None:
    assert error_of("data:image/png,abc") == (
        "`init_image` is a data: URL without ';base64,'; send base64 data."
    )


def test_too_many_bytes() -> None:
    source = png_b64(256, 256)
    size = len(png_bytes(256, 256))
    message = error_of(source, max_bytes=size // 2)
    assert message.startswith("`init_image` is about ")
    assert "the limit is" in message and message.endswith(
        "Send a smaller or more compressed image."
    )


def test_too_many_pixels_refused_from_the_header() -> None:
    # A 1-bit 6000×6000 PNG is a few KB but 36 Mpx: refused before any pixel is decoded.
    assert error_of(png_b64(6000, 6000, "1")) == (
        "`init_image` is 6000×6000 pixels; the largest side this worker accepts is 1024. "
        "Scale it down and send it again."
    )
    assert "largest side" in error_of(png_b64(1032, 64))


def test_pil_decompression_bomb_check_is_a_bad_request(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    for size in (64, 200):  # over the limit (warning), over twice the limit (error)
        message = error_of(png_b64(size, size))
        assert message.startswith("`init_image` has too many pixels to decode safely")


def test_urls_refused_when_disabled() -> None:
    assert error_of("https://example.com/a.png") == (
        "`init_image` is a URL, but this worker does not fetch URLs; "
        "send the image as base64 or a data: URL."
    )


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/x.png",
        "http://localhost:8000/x.png",
        "http://[::1]/x.png",
        "http://10.1.2.3/x.png",
        "http://192.168.0.10/x.png",
        "http://169.254.169.254/latest/meta-data",
        "https://0.0.0.0/x.png",
    ],
)
def test_private_addresses_refused_even_when_enabled(url: str) -> None:
    # Refused before any connection is made, so no network is needed.
    message = error_of(url, allow_urls=True)
    assert "is a private, loopback or link-local address" in message
    assert message.endswith("image URLs must point to the public internet.")


def test_crop_to_multiple() -> None:
    image = Image.new("RGB", (90, 71))
    cropped = crop_to_multiple(image, 8)
    assert cropped.size == (88, 64)
    assert crop_to_multiple(cropped, 8) is cropped


# --- fetching, with a fake DNS and a fake HTTP server (no network) ---------------------------


@pytest.fixture
def fake_web(monkeypatch: pytest.MonkeyPatch) -> dict[str, httpx.Response]:
    """Routes: URL -> response. img.example resolves to a public address."""
    routes: dict[str, httpx.Response] = {}
    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(host: str, *args: Any, **kw: Any) -> Any:
        if host == "img.example":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", 80))]
        return real_getaddrinfo(host, *args, **kw)

    def serve(request: httpx.Request) -> httpx.Response:
        return routes.get(str(request.url), httpx.Response(404))

    class FakeClient(httpx.Client):
        def __init__(self, **kw: Any) -> None:
            super().__init__(transport=httpx.MockTransport(serve), **kw)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(httpx, "Client", FakeClient)
    return routes


def test_fetch_a_public_url(fake_web: dict[str, httpx.Response]) -> None:
    fake_web["http://img.example/a.png"] = httpx.Response(200, content=png_bytes(72, 64))
    assert load("http://img.example/a.png", allow_urls=True).size == (72, 64)


def test_fetch_follows_redirects_and_checks_each_hop(fake_web: dict[str, httpx.Response]) -> None:
    fake_web["http://img.example/a.png"] = httpx.Response(302, headers={"location": "/b.png"})
    fake_web["http://img.example/b.png"] = httpx.Response(200, content=png_bytes(64, 64))
    assert load("http://img.example/a.png", allow_urls=True).size == (64, 64)
    fake_web["http://img.example/c.png"] = httpx.Response(
        302, headers={"location": "http://127.0.0.1/secret.png"}
    )
    assert "'127.0.0.1' is a private" in error_of("http://img.example/c.png", allow_urls=True)


def test_fetch_errors(fake_web: dict[str, httpx.Response]) -> None:
    assert error_of("http://img.example/missing.png", allow_urls=True) == (
        "`init_image`: fetching the URL answered HTTP 404."
    )
    fake_web["http://img.example/big.png"] = httpx.Response(200, content=png_bytes(256, 256))
    size = len(png_bytes(256, 256))
    assert error_of("http://img.example/big.png", allow_urls=True, max_bytes=size - 1) == (
        f"`init_image` is about {size / 1e3:.1f} KB; the limit is {(size - 1) / 1e3:.1f} KB. "
        "Send a smaller or more compressed image."
    )
