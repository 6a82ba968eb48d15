"""Raw request bodies (uploads) read with a size limit: 413 before reading when the declared
length is over it, 413 as soon as the streamed body passes it, 422 when empty."""

from __future__ import annotations

from fastapi import HTTPException, Request


async def read_limited_body(request: Request, limit: int, what: str) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise HTTPException(status_code=413, detail=f"the {what} is {declared} bytes; at most {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(status_code=413, detail=f"the {what} is over {limit} bytes")
        chunks.append(chunk)
    body = b"".join(chunks)
    if not body:
        raise HTTPException(status_code=422, detail=f"the request body is empty; send the {what}'s bytes")
    return body
