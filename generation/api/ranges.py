"""Single byte-range responses (RFC 9110), so video players can seek in a served file."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import IO

from django.http import FileResponse, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
_CHUNK = 64 * 1024


def _read(handle: IO[bytes], start: int, length: int) -> Iterator[bytes]:
    try:
        handle.seek(start)
        while length > 0:
            chunk = handle.read(min(_CHUNK, length))
            if not chunk:
                break
            length -= len(chunk)
            yield chunk
    finally:
        handle.close()


def ranged_file_response(
    handle: IO[bytes], *, size: int, content_type: str, range_header: str | None
) -> HttpResponseBase:
    """The whole file (200), the requested range (206) or 416 for one that cannot be met.

    Multi-range requests and malformed headers get the whole file, as RFC 9110 allows.
    """
    match = _RANGE.match(range_header.strip()) if range_header else None
    if match is None or (not match.group(1) and not match.group(2)):
        response: HttpResponseBase = FileResponse(handle, content_type=content_type)
        response["Accept-Ranges"] = "bytes"
        return response
    first, last = match.group(1), match.group(2)
    if first:
        start = int(first)
        end = min(int(last), size - 1) if last else size - 1
    else:  # a suffix: the last N bytes
        start = max(0, size - int(last))
        end = size - 1
    if start >= size or start > end:
        handle.close()
        refused = HttpResponse(status=416)
        refused["Content-Range"] = f"bytes */{size}"
        return refused
    response = StreamingHttpResponse(
        _read(handle, start, end - start + 1), status=206, content_type=content_type
    )
    response["Content-Range"] = f"bytes {start}-{end}/{size}"
    response["Content-Length"] = str(end - start + 1)
    response["Accept-Ranges"] = "bytes"
    return response
