"""Resumable uploads over tus 1.0.0 (core, creation, termination, expiration, checksum):
headers in, use case called, headers out. The rules live in the use case and the aggregate."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from email.utils import format_datetime
from uuid import UUID

from litestar import Controller, Request, Response, delete, head, patch, post, route
from litestar.datastructures import ResponseHeader
from litestar.enums import HttpMethod, ParamType
from litestar.exceptions import ClientException, HTTPException
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPIFormat, OpenAPIMediaType, OpenAPIType, Operation, Parameter, RequestBody, Schema
from litestar.params import FromPath

from adapters.inbound.http.dependencies import PrincipalDep, UploadsDep
from adapters.inbound.http.multipart import with_read_timeout
from adapters.inbound.http.openapi_problems import Problem
from adapters.inbound.http.problems import PROBLEM_JSON, domain_error_handler, http_error_handler, problem
from application.errors import ChecksumMismatch, DomainError, UnsupportedChecksum
from application.resumable import CHECKSUM_ALGORITHMS, UploadStatus
from domain.errors import LengthExceeded, UploadExpired

TUS_VERSION = "1.0.0"
TUS_EXTENSIONS = "creation,termination,expiration,checksum"
OFFSET_OCTET_STREAM = "application/offset+octet-stream"
MAX_METADATA_PAIRS = 32


class TusProtocolError(ClientException):
    """400: a tus header is missing or malformed."""


class UnsupportedVersion(ClientException):
    status_code = 412


class WrongContentType(ClientException):
    status_code = 415


def _headers(request: Request) -> dict[str, str]:
    return {"Tus-Resumable": TUS_VERSION} if request.method != HttpMethod.OPTIONS else {}


def tus_error_handler(request: Request, error: Exception) -> Response:
    """The application's problem+json answers, with tus's own statuses and headers added."""
    if isinstance(error, UploadExpired):
        response = problem(410, str(error), slug="upload-expired", title="Gone")
    elif isinstance(error, LengthExceeded):
        response = problem(413, str(error), slug="payload-too-large")
    elif isinstance(error, ChecksumMismatch):
        response = problem(460, str(error), slug="checksum-mismatch", title="Checksum Mismatch")
    elif isinstance(error, UnsupportedChecksum):
        response = problem(400, str(error), slug="unsupported-checksum")
    elif isinstance(error, DomainError):
        response = domain_error_handler(request, error)
    elif isinstance(error, UnsupportedVersion):
        response = problem(412, str(error.detail), slug="unsupported-tus-version", title="Precondition Failed")
        response.headers["Tus-Version"] = TUS_VERSION
    elif isinstance(error, HTTPException):
        response = http_error_handler(request, error)
    else:
        raise error
    response.headers.update(_headers(request))
    return response


async def require_tus_version(request: Request) -> None:
    """Every request but OPTIONS says which protocol version it speaks."""
    if request.method != HttpMethod.OPTIONS and request.headers.get("tus-resumable") != TUS_VERSION:
        raise UnsupportedVersion(f"send Tus-Resumable: {TUS_VERSION}")


PROTOCOL_STATUSES = {
    409: "Upload-Offset is not the upload's offset",
    410: "the upload expired",
    412: "Tus-Resumable missing or not 1.0.0",
    413: "over the size limit or the upload's length",
    415: "not application/offset+octet-stream, or not a video",
    460: "Upload-Checksum does not match; the chunk was discarded",
}


def _problems(*statuses: int) -> dict[int, ResponseSpec]:
    return {
        status: ResponseSpec(data_container=Problem, media_type=PROBLEM_JSON, generate_examples=False,
                             description=PROTOCOL_STATUSES[status])
        for status in statuses
    }


REQUEST_HEADERS = {
    "Tus-Resumable": "1.0.0",
    "Upload-Length": "the file's size in bytes",
    "Upload-Metadata": "`key base64,…`: filename, title, description, tags (comma separated), genre, visibility",
    "Upload-Offset": "where these bytes go: the upload's current offset",
    "Upload-Checksum": f"`<algorithm> <base64 digest>` of this chunk; algorithms: {', '.join(CHECKSUM_ALGORITHMS)}",
}


def _operation(*headers: str, optional: tuple[str, ...] = (), body: bool = False) -> type[Operation]:
    """The tus request headers (and the PATCH body), which the handlers read by hand."""

    @dataclass
    class TusOperation(Operation):
        def __post_init__(self) -> None:
            self.parameters = [*(self.parameters or []), *(
                Parameter(name=name, param_in=ParamType.HEADER, required=name not in optional,
                          schema=Schema(type=OpenAPIType.STRING), description=REQUEST_HEADERS[name])
                for name in (*headers, *optional)
            )]
            if body:
                octets = OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY))
                self.request_body = RequestBody(content={OFFSET_OCTET_STREAM: octets}, required=True)

    return TusOperation


def _documented(*names: str) -> list[ResponseHeader]:
    descriptions = {
        "Tus-Resumable": "1.0.0", "Upload-Offset": "bytes received so far",
        "Upload-Length": "the file's size", "Upload-Expires": "when an unfinished upload is dropped",
        "Location": "the upload's URL (creation), or the video's once complete",
        "Vodhub-Video-Id": "the recorded video, once complete",
    }
    return [ResponseHeader(name=name, description=descriptions[name], documentation_only=True) for name in names]


class TusController(Controller):
    path = "/api/videos/uploads"
    tags = ["uploads (tus)"]
    # mypy takes a function stored on a class for a method (the request as self); Litestar calls it with the request.
    before_request = require_tus_version  # type: ignore[assignment]
    exception_handlers = {DomainError: tus_error_handler, HTTPException: tus_error_handler}

    # Litestar registers a controller's handlers in name order and gives a path without an
    # OPTIONS handler its own: this one's name must sort before the POST handler's.
    @route("", http_method=HttpMethod.OPTIONS, status_code=204, security=[{}], response_headers=[
        ResponseHeader(name=name, description="tus server capabilities", documentation_only=True)
        for name in ("Tus-Version", "Tus-Extension", "Tus-Max-Size", "Tus-Checksum-Algorithm")
    ])
    async def advertise(self, uploads: UploadsDep) -> Response[None]:
        """What the tus server supports: version, extensions, size limit, checksum algorithms."""
        return Response(content=None, status_code=204, headers={
            "Tus-Resumable": TUS_VERSION, "Tus-Version": TUS_VERSION, "Tus-Extension": TUS_EXTENSIONS,
            "Tus-Max-Size": str(uploads.max_bytes),
            "Tus-Checksum-Algorithm": ",".join(CHECKSUM_ALGORITHMS),
        })

    @post(
        "", status_code=201, responses=_problems(412, 413),
        operation_class=_operation("Tus-Resumable", "Upload-Length", optional=("Upload-Metadata",)),
        response_headers=_documented("Tus-Resumable", "Location", "Upload-Offset", "Upload-Expires"),
    )
    async def create_upload(self, request: Request, principal: PrincipalDep, uploads: UploadsDep) -> Response[None]:
        """Open an upload (`Upload-Length`, `Upload-Metadata`: filename, title, description, tags,
        genre, visibility, base64 values); `Location` is where to PATCH its bytes."""
        if "upload-defer-length" in request.headers:
            raise TusProtocolError("Upload-Defer-Length is not supported; send Upload-Length")
        length = _non_negative(request, "upload-length")
        metadata = _metadata(request.headers.get("upload-metadata", ""))
        status = await uploads.create(principal, length, metadata)
        return Response(content=None, status_code=201, headers={
            **_status_headers(request, status), "Location": f"{self.path}/{status.id}",
        })

    @head(
        "/{upload_id:uuid}", responses=_problems(410, 412), operation_class=_operation("Tus-Resumable"),
        response_headers=_documented(
            "Tus-Resumable", "Upload-Offset", "Upload-Length", "Upload-Expires", "Vodhub-Video-Id", "Location",
        ),
    )
    async def upload_status(
        self, request: Request, upload_id: FromPath[UUID], principal: PrincipalDep, uploads: UploadsDep
    ) -> Response[None]:
        """`Upload-Offset` to resume from; once complete, `Vodhub-Video-Id` and `Location`."""
        status = await uploads.status(principal, upload_id)
        return Response(content=None, status_code=200, headers={
            **_status_headers(request, status), "Upload-Length": str(status.length),
            "Upload-Metadata": _encode_metadata(status.metadata),
            "Cache-Control": "no-store",
        })

    @patch(
        "/{upload_id:uuid}", status_code=204, request_max_body_size=None,
        responses=_problems(409, 410, 412, 413, 415, 460),
        operation_class=_operation("Tus-Resumable", "Upload-Offset", optional=("Upload-Checksum",), body=True),
        response_headers=_documented("Tus-Resumable", "Upload-Offset", "Upload-Expires", "Vodhub-Video-Id", "Location"),
    )
    async def append(
        self, request: Request, upload_id: FromPath[UUID], principal: PrincipalDep, uploads: UploadsDep
    ) -> Response[None]:
        """Bytes at `Upload-Offset` (`application/offset+octet-stream`, optional `Upload-Checksum`);
        the last ones complete the upload as POST /api/videos/upload would."""
        if request.headers.get("content-type", "").split(";")[0].strip().lower() != OFFSET_OCTET_STREAM:
            raise WrongContentType(f"send the bytes as {OFFSET_OCTET_STREAM}")
        offset = _non_negative(request, "upload-offset")
        timeout = request.app.state.get("upload_read_timeout_s", 60.0)
        status = await uploads.append(
            principal, upload_id, offset, with_read_timeout(request.stream(), timeout), _checksum(request),
        )
        return Response(content=None, status_code=204, headers=_status_headers(request, status))

    @delete(
        "/{upload_id:uuid}", status_code=204, responses=_problems(410, 412),
        operation_class=_operation("Tus-Resumable"), response_headers=_documented("Tus-Resumable"),
    )
    async def terminate(
        self, request: Request, upload_id: FromPath[UUID], principal: PrincipalDep, uploads: UploadsDep
    ) -> Response[None]:
        """Drop an unfinished upload and its bytes; afterwards it is not found."""
        await uploads.terminate(principal, upload_id)
        return Response(content=None, status_code=204, headers=_headers(request))


def _status_headers(request: Request, status: UploadStatus) -> dict[str, str]:
    headers = {**_headers(request), "Upload-Offset": str(status.offset)}
    if status.video_id is None:
        headers["Upload-Expires"] = format_datetime(status.expires_at, usegmt=True)
    else:
        headers["Vodhub-Video-Id"] = str(status.video_id)
        headers["Location"] = f"/api/videos/{status.video_id}"
    return headers


def _non_negative(request: Request, name: str) -> int:
    value = request.headers.get(name, "").strip()
    if not value.isdigit() or len(value) > 19:
        raise TusProtocolError(f"{name.title()} must be a non-negative integer")
    return int(value)


def _metadata(header: str) -> dict[str, str]:
    """`key base64,key base64`; a key may come without a value."""
    metadata: dict[str, str] = {}
    pairs = [pair.strip() for pair in header.split(",") if pair.strip()]
    if len(pairs) > MAX_METADATA_PAIRS:
        raise TusProtocolError(f"Upload-Metadata holds at most {MAX_METADATA_PAIRS} pairs")
    for pair in pairs:
        key, _, encoded = pair.partition(" ")
        if not key or key in metadata or " " in encoded.strip():
            raise TusProtocolError(f"Upload-Metadata: malformed pair {key!r}")
        try:
            metadata[key] = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise TusProtocolError(f"Upload-Metadata: {key} is not base64 of UTF-8 text") from None
    return metadata


def _encode_metadata(metadata: dict[str, str]) -> str:
    return ",".join(
        f"{key} {base64.b64encode(value.encode()).decode()}" if value else key for key, value in metadata.items()
    )


def _checksum(request: Request) -> tuple[str, bytes] | None:
    header = request.headers.get("upload-checksum")
    if header is None:
        return None
    algorithm, _, encoded = header.strip().partition(" ")
    try:
        return algorithm.lower(), base64.b64decode(encoded.strip(), validate=True)
    except binascii.Error:
        raise TusProtocolError("Upload-Checksum: `<algorithm> <base64 digest>`") from None

