"""Benchmark ``agedetect serve`` as a user runs it: a real server process on loopback.

Measures
- cold start: from launching ``agedetect serve`` until ``/healthz`` answers 200;
- latency of ``POST /api/v1/predict`` with one 640x480 JPEG holding one face
  (``people/img2.jpg`` resized), p50 and p95, for 1 client and for 8 concurrent clients
  (each client a keep-alive connection sending requests back to back);
- peak resident memory (VmHWM) of the server process at the end.

    .venv/bin/python bench/serve.py                 # ~1 minute
    .venv/bin/python bench/serve.py --requests 100 --json

Targets on the project's 2-core machine: p50 <= 50 ms (1 client), cold start <= 3 s,
peak RSS <= 500 MB. Prints figures; it is not a test.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import threading
import time
from pathlib import Path

import httpx
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from servers import ServeProcess  # noqa: E402  (the launcher the serving tests use)
from shared_data import PEOPLE  # noqa: E402

PHOTO = PEOPLE / "img2.jpg"
TARGETS = {"p50_ms_1_client": 50.0, "cold_start_s": 3.0, "peak_rss_mb": 500.0}


def photo_640x480() -> bytes:
    picture = Image.open(PHOTO).convert("RGB").resize((640, 480), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    picture.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def start_server(model: str | None, concurrency: int | None = None, timeout: float = 60.0) -> ServeProcess:
    """``agedetect serve`` on loopback without an access log, started (``/healthz`` answered):
    tests/servers.py's launcher, which the serving tests use too. Use it as a context manager."""
    args = ["--no-access-log", *(["--model", model] if model else []),
            *(["--concurrency", str(concurrency)] if concurrency else [])]
    return ServeProcess(*args, timeout=timeout)


def latencies(url: str, data: bytes, clients: int, per_client: int) -> tuple[list[float], float, int]:
    """Seconds per request over all clients, the wall time, and the number of failures."""
    times: list[float] = []
    failures = [0]
    lock = threading.Lock()

    def client_loop() -> None:
        mine = []
        with httpx.Client(base_url=url, timeout=60) as client:
            for _ in range(per_client):
                begin = time.perf_counter()
                response = client.post("/api/v1/predict", files={"image": ("photo.jpg", data, "image/jpeg")})
                mine.append(time.perf_counter() - begin)
                if response.status_code != 200 or len(response.json()["faces"]) != 1:
                    with lock:
                        failures[0] += 1
        with lock:
            times.extend(mine)

    return times, run_clients(client_loop, clients), failures[0]


def run_clients(client, clients: int) -> float:
    """Run ``client`` in ``clients`` threads at once; the wall time until the last ends."""
    threads = [threading.Thread(target=client) for _ in range(clients)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - began


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200, help="requests per scenario (default 200)")
    parser.add_argument("--model", help="an exported .onnx (default: the shipped model)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()

    data = photo_640x480()
    with start_server(args.model) as server:
        url = server.url
        latencies(url, data, 1, 5)  # warm the connection path; the model is already warm
        figures: dict[str, float] = {"cold_start_s": round(server.started_in, 2)}
        for clients in (1, 8):
            times, wall, failures = latencies(url, data, clients, max(1, args.requests // clients))
            figures[f"p50_ms_{clients}_client{'s' * (clients > 1)}"] = round(1000 * percentile(times, 50), 1)
            figures[f"p95_ms_{clients}_client{'s' * (clients > 1)}"] = round(1000 * percentile(times, 95), 1)
            figures[f"requests_per_s_{clients}_client{'s' * (clients > 1)}"] = round(len(times) / wall, 1)
            figures[f"failures_{clients}_client{'s' * (clients > 1)}"] = failures
        figures["peak_rss_mb"] = round(server.memory_mb()["peak"], 1)

    if args.json:
        print(json.dumps(figures, indent=2))
        return
    print(f"agedetect serve on loopback, one 640x480 JPEG ({len(data) / 1e3:.0f} kB) with one face")
    for key, value in figures.items():
        target = TARGETS.get(key)
        verdict = "" if target is None else f"   target <= {target:g}: {'met' if value <= target else 'MISSED'}"
        print(f"  {key:<26} {value:>8}{verdict}")


if __name__ == "__main__":
    main()
