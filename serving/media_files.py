"""Media bytes over HTTP, from a local media store or from object storage, with Range requests.

A local store hands the file to Starlette's ``FileResponse`` (which answers ``Range`` itself).
From object storage the ingress reads just the requested bytes (one ranged GET) and answers
206 with ``Content-Range``; players seek without the ingress downloading the whole video.
One range per request: a multi-range request gets the whole file (which RFC 9110 allows).
"""

from __future__ import annotations

import re

from fastapi import HTTPException
from fastapi.responses import FileResponse, Response

from kinora.stores.media import MediaStore

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def media_response(media: MediaStore, key: str, media_type: str, range_header: str | None) -> Response:
    """The file under ``key`` as a response; 404 when it is missing, 416 for a range beyond it."""
    if media.local:
        if not media.exists(key):
            raise HTTPException(status_code=404, detail="the video's media is missing from the media store")
        return FileResponse(media.path(key), media_type=media_type)
    try:
        size = media.size(key)
    except FileNotFoundError:
        raise HTTPException(status_code=404, detail="the video's media is missing from the media store") from None
    span = _span(range_header, size)
    if span is None:
        return Response(media.get_bytes(key), media_type=media_type, headers={"accept-ranges": "bytes"})
    start, end = span
    return Response(media.read_range(key, start, end + 1), status_code=206, media_type=media_type,
                    headers={"accept-ranges": "bytes", "content-range": f"bytes {start}-{end}/{size}"})


def _span(header: str | None, size: int) -> tuple[int, int] | None:
    """The inclusive byte span a ``Range`` header asks for, or None for the whole file."""
    if not header:
        return None
    m = _RANGE.match(header.strip())
    if not m or (not m.group(1) and not m.group(2)):
        return None  # several ranges, or another unit: the whole file
    first, last = m.group(1), m.group(2)
    if not first:  # the last N bytes
        n = int(last)
        if n == 0:
            raise _unsatisfiable(size)
        return max(0, size - n), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or end < start:
        raise _unsatisfiable(size)
    return start, end


def _unsatisfiable(size: int) -> HTTPException:
    return HTTPException(status_code=416, detail=f"the range lies outside the file ({size} bytes)",
                         headers={"content-range": f"bytes */{size}"})
