"""A streamed multipart/form-data body as upload events, with bounded memory.

The sans-io PushMultipartParser (the `multipart` package) turns each arriving chunk into
segment events; file bytes pass straight through, text fields are collected up to a limit."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator

import anyio
from litestar.exceptions import ClientException
from multipart import MultipartError, MultipartSegment, PushMultipartParser, parse_options_header

from application.errors import ValidationError
from application.uploads import FileChunk, FileEnd, FileStart, FormField, UploadEvent

MAX_FIELD_BYTES = 64 * 1024
MAX_SEGMENTS = 32


class MalformedUpload(ClientException):
    """400: the body is not a well-formed multipart/form-data stream."""


def boundary_of(content_type: str) -> str:
    media_type, options = parse_options_header(content_type or "")
    if media_type != "multipart/form-data":
        raise UnsupportedContentType("send the video as multipart/form-data")
    boundary = options.get("boundary", "")
    if not boundary or len(boundary) > 200:
        raise MalformedUpload("multipart/form-data needs a boundary parameter")
    return boundary


class UnsupportedContentType(ClientException):
    status_code = 415


async def upload_events(
    content_type: str, body: AsyncIterable[bytes], read_timeout_s: float = 60.0
) -> AsyncIterator[UploadEvent]:
    """Parse as the bytes arrive; a browser's empty file input (filename="") counts as no file.
    A client that stops sending for read_timeout_s gets 408 (and its partial upload is dropped)."""
    parser = PushMultipartParser(
        boundary_of(content_type), max_segment_count=MAX_SEGMENTS, max_header_count=8, strict=False
    )
    segment: MultipartSegment | None = None
    field_value = bytearray()
    skipping = False
    try:
        async for chunk in _with_end_marker(with_read_timeout(body, read_timeout_s)):
            for result in parser.parse(chunk):
                if isinstance(result, MultipartSegment):
                    segment, field_value = result, bytearray()
                    skipping = result.filename == ""
                    if result.filename and not skipping:
                        yield FileStart(field=result.name, filename=result.filename)
                elif result is None:  # end of the current segment
                    if segment is not None and segment.filename is None:
                        yield FormField(name=segment.name, value=_text(segment.name, field_value))
                    elif segment is not None and not skipping:
                        yield FileEnd()
                    segment = None
                elif segment is not None and segment.filename is None:
                    field_value += result
                    if len(field_value) > MAX_FIELD_BYTES:
                        raise ValidationError(segment.name, f"at most {MAX_FIELD_BYTES} bytes")
                elif not skipping:
                    yield FileChunk(bytes(result))
        if not parser.closed:
            raise MalformedUpload("the multipart body ended early")
    except MultipartError as error:
        raise MalformedUpload(f"malformed multipart body: {error}") from None


async def _with_end_marker(body: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
    """The body's non-empty chunks, then b"" which tells the parser the input ended."""
    async for chunk in body:
        if chunk:
            yield chunk
    yield b""


class SlowUpload(ClientException):
    status_code = 408


async def with_read_timeout(body: AsyncIterable[bytes], timeout_s: float) -> AsyncIterator[bytes]:
    """The body's non-empty chunks; 408 when the client sends nothing for timeout_s."""
    chunks = aiter(body)
    while True:
        try:
            with anyio.fail_after(timeout_s):
                chunk = await anext(chunks)
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise SlowUpload(f"no data for {timeout_s:g} s; what was sent of this upload is dropped") from None
        if chunk:
            yield chunk


def _text(name: str, value: bytearray) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationError(name, "must be UTF-8 text") from None
