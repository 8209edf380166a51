#!/usr/bin/env python
"""Loopback load test of `emollama serve`: 20 concurrent clients x 10 chat requests with the astronaut photo.

Two server configurations, each started as its own `emollama serve` process on a free 127.0.0.1 port:

- ``within_capacity``: --max-concurrency 1 --queue 24 (capacity 25 >= 20 clients): expect only 200s;
- ``over_capacity``:   --max-concurrency 1 --queue 4  (capacity 5 < 20 clients): expect 200s and 429s, never a 5xx,
  and the server's peak of admitted requests never above its capacity.

Bounded in count (200 requests per phase) and time (--deadline-s per phase). Writes bench/results/server_load.json.

    python bench/server_load.py [--clients 20] [--requests 10] [--deadline-s 120]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "results" / "server_load.json"
PHASES = {"within_capacity": {"max_concurrency": 1, "queue": 24}, "over_capacity": {"max_concurrency": 1, "queue": 4}}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, backend: str, max_concurrency: int, queue: int) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "emollama.cli", "serve", "--port", str(port), "--backend", backend,
           "--max-concurrency", str(max_concurrency), "--queue", str(queue), "--timeout-s", "60"]
    env = {**os.environ, "EMOLLAMA_API_KEY": ""}
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


async def wait_ready(client, url: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            if (await client.get(url + "/health")).status_code == 200:
                return
        except Exception:  # connection refused until uvicorn binds
            pass
        await asyncio.sleep(0.2)
    raise TimeoutError("server did not become ready")


async def run_phase(url: str, body: dict, clients: int, requests: int, deadline_s: float) -> dict:
    import httpx

    latencies: list[float] = []
    statuses: Counter = Counter()
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        async def one_client() -> None:
            for _ in range(requests):
                t0 = time.perf_counter()
                try:
                    r = await client.post(url + "/v1/chat/completions", json=body)
                    statuses[r.status_code] += 1
                    if r.status_code == 200:
                        latencies.append(time.perf_counter() - t0)
                except httpx.HTTPError as err:
                    statuses[f"transport:{type(err).__name__}"] += 1

        t0 = time.perf_counter()
        await asyncio.wait_for(asyncio.gather(*[one_client() for _ in range(clients)]), deadline_s)
        wall = time.perf_counter() - t0
        health = (await client.get(url + "/health")).json()
    lat = sorted(latencies)

    def pct(p: float) -> float | None:
        return round(lat[min(len(lat) - 1, int(p * len(lat)))] * 1000, 1) if lat else None

    return {"requests": clients * requests, "status_counts": {str(k): v for k, v in sorted(statuses.items(),
                                                                                           key=str)},
            "latency_ms_200": {"p50": pct(0.50), "p90": pct(0.90), "p99": pct(0.99), "max": pct(1.0),
                               "mean": round(statistics.mean(lat) * 1000, 1) if lat else None},
            "wall_s": round(wall, 2), "ok_per_s": round(len(lat) / wall, 1),
            "server_peak_admitted": health["peak_admitted"], "server_capacity": health["capacity"]}


async def main_async(args) -> dict:
    import httpx

    from emollama import assets

    try:
        image, backend = Path(assets.resolve("astronaut")).read_bytes(), "mediapipe"
    except (FileNotFoundError, OSError, ValueError):
        import io

        import numpy as np
        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray((np.random.default_rng(0).random((256, 256, 3)) * 255).astype("uint8")).save(buf, "PNG")
        image, backend = buf.getvalue(), "synthetic"
    url_img = "data:image/png;base64," + base64.b64encode(image).decode()
    body = {"model": "emollama-analyzer", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "How does this person feel?"}, {"type": "image_url", "image_url": {"url": url_img}}]}]}
    results = {}
    for name, cfg in PHASES.items():
        port = free_port()
        proc = start_server(port, backend, **cfg)
        try:
            async with httpx.AsyncClient(timeout=5) as c:
                await wait_ready(c, f"http://127.0.0.1:{port}", proc)
            res = await run_phase(f"http://127.0.0.1:{port}", body, args.clients, args.requests, args.deadline_s)
        finally:
            proc.terminate()
            proc.wait(15)
        results[name] = {"server": {**cfg, "backend": backend, "capacity": cfg["max_concurrency"] + cfg["queue"]},
                         **res}
        print(f"{name}: {res['status_counts']} p50 {res['latency_ms_200']['p50']} ms p99 "
              f"{res['latency_ms_200']['p99']} ms, {res['ok_per_s']} ok/s, peak admitted "
              f"{res['server_peak_admitted']}/{res['server_capacity']}", flush=True)
    return results


def check(results: dict, clients: int) -> list[str]:
    """The load test's pass criteria; returns the failures."""
    bad = []
    for name, r in results.items():
        codes = r["status_counts"]
        if any(k.startswith("5") or k.startswith("transport") for k in codes):
            bad.append(f"{name}: 5xx or transport errors {codes}")
        if r["server_peak_admitted"] > r["server_capacity"]:
            bad.append(f"{name}: admitted {r['server_peak_admitted']} > capacity {r['server_capacity']}")
        if r["server"]["capacity"] >= clients and codes.get("429"):  # every client fits: a 429 would be wrong
            bad.append(f"{name}: 429s within capacity {codes}")
    return bad


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--requests", type=int, default=10, help="requests per client")
    ap.add_argument("--deadline-s", type=float, default=120.0, help="time bound per phase")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT / "bench"))
    from common import machine_info

    results = asyncio.run(main_async(args))
    failures = check(results, args.clients)
    out = {"benchmark": "server_load", "command": "python bench/server_load.py", "clients": args.clients,
           "requests_per_client": args.requests, "machine": machine_info(), "phases": results,
           "passed": not failures, "failures": failures}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {OUT}" + ("" if not failures else f"; FAILED: {failures}"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
