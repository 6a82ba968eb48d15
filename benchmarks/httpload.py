"""A light closed-loop HTTP load generator, run in a process of its own.

Why not httpx in threads: on a 2-core machine the load generator shares the cores with the server
it measures, and httpx in 8 Python threads cost more CPU per request than the feed's ranking does
(its threads also contend for one interpreter lock). This client is one asyncio loop (uvloop
when installed) holding ``concurrency`` keep-alive HTTP/1.1 connections; each sends its next GET
as soon as the previous answer is read, so latency is measured as a closed loop at a fixed
concurrency. Connections are spread evenly over the ``urls`` given (one per server process), as a
least-connections balancer in front of several replicas would spread them.

    from benchmarks.httpload import run_load
    result = run_load(["http://127.0.0.1:18631"], headers={...}, paths=["/v1/feed?limit=20"],
                      seconds=10, concurrency=8)

Latency is from writing the request to reading the last byte of the body. A non-2xx answer, a
reset connection or a 30 s wait counts as failed (the connection is opened again).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent


def percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))] if xs else float("nan")


def run_load(urls: list[str], *, headers: dict[str, str], paths: list[str], seconds: float, concurrency: int,
             count_field: str | None = None) -> dict:
    """Run the load in a child process; return requests, failed, p50/p99 ms, requests/s and, with
    ``count_field``, how many answers carried each value of that top-level JSON field."""
    spec = dict(urls=urls, headers=headers, paths=paths, seconds=seconds, concurrency=concurrency, count_field=count_field)
    out = subprocess.run([sys.executable, "-m", "benchmarks.httpload"], input=json.dumps(spec), capture_output=True,
                         text=True, cwd=ROOT, timeout=seconds + 120)
    if out.returncode != 0:
        raise RuntimeError(f"load generator failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length, chunked = None, False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if length is not None:
        return status, await reader.readexactly(length)
    if not chunked:
        raise ValueError("answer without Content-Length or chunked encoding")
    body = bytearray()
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        chunk = await reader.readexactly(size + 2)
        if size == 0:
            return status, bytes(body)
        body += chunk[:-2]


async def _connection(n: int, spec: dict, stop: float, out: dict) -> None:
    url = urlsplit(spec["urls"][n % len(spec["urls"])])
    host, port = url.hostname, url.port or 80
    head = "".join(f"{k}: {v}\r\n" for k, v in spec["headers"].items())
    paths, field = spec["paths"], spec["count_field"]
    reader = writer = None
    k = 0
    while time.monotonic() < stop:
        path = paths[(n * 7919 + k) % len(paths)]
        k += 1
        t0 = time.perf_counter()
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection(host, port)
            writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{head}\r\n".encode())
            status, body = await asyncio.wait_for(_read_response(reader), 30)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.TimeoutError, ValueError) as exc:
            out["errors"].append(type(exc).__name__)
            if writer is not None:
                writer.close()
            reader = writer = None
            continue
        ms = (time.perf_counter() - t0) * 1000
        if 200 <= status < 300:
            out["latency"].append(ms)
            if field:
                value = str(json.loads(body).get(field))
                out["counts"][value] = out["counts"].get(value, 0) + 1
        else:
            out["errors"].append(f"HTTP {status}: {body[:200].decode(errors='replace')}")
    if writer is not None:
        writer.close()


async def _main(spec: dict) -> dict:
    out: dict = {"latency": [], "errors": [], "counts": {}}
    stop = time.monotonic() + spec["seconds"]
    t0 = time.perf_counter()
    await asyncio.gather(*(_connection(n, spec, stop, out) for n in range(spec["concurrency"])))
    wall = time.perf_counter() - t0
    lat = out["latency"]
    result = {"requests": len(lat) + len(out["errors"]), "failed": len(out["errors"]), "errors": out["errors"][:5],
              "p50_ms": round(percentile(lat, 0.5), 2), "p99_ms": round(percentile(lat, 0.99), 2),
              "requests_per_s": round(len(lat) / wall, 1)}
    if spec["count_field"]:
        result["counts"] = out["counts"]
    return result


def main() -> int:
    spec = json.loads(sys.stdin.read())
    try:
        import uvloop

        factory = uvloop.new_event_loop
    except ImportError:
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        print(json.dumps(runner.run(_main(spec))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
