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
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
from PIL import Image

PHOTO = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "photos" / "people" / "img2.jpg"
AGEDETECT = str(Path(sys.executable).with_name("agedetect"))
TARGETS = {"p50_ms_1_client": 50.0, "cold_start_s": 3.0, "peak_rss_mb": 500.0}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def photo_640x480() -> bytes:
    picture = Image.open(PHOTO).convert("RGB").resize((640, 480), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    picture.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def start_server(
    port: int, model: str | None, concurrency: int | None = None, timeout: float = 60.0
) -> tuple[subprocess.Popen, float]:
    """``agedetect serve`` on loopback, once ``/healthz`` answers; and the seconds that took."""
    command = [AGEDETECT, "serve", "--port", str(port), "--no-access-log"]
    command += ["--model", model] if model else []
    command += ["--concurrency", str(concurrency)] if concurrency else []
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    with httpx.Client(timeout=1) as client:
        while True:
            try:
                if client.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                    return process, time.perf_counter() - started
            except httpx.TransportError:
                pass
            if process.poll() is not None:
                raise SystemExit(f"agedetect serve exited: {process.stderr.read().decode()}")
            if time.perf_counter() - started > timeout:
                process.kill()
                raise SystemExit(f"agedetect serve did not answer /healthz within {timeout:g} s")
            time.sleep(0.005)


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

    threads = [threading.Thread(target=client_loop) for _ in range(clients)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return times, time.perf_counter() - began, failures[0]


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    """A process's memory from /proc: ``VmRSS`` now, ``VmHWM`` its peak."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200, help="requests per scenario (default 200)")
    parser.add_argument("--model", help="an exported .onnx (default: the shipped model)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()

    data = photo_640x480()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process, cold_start = start_server(port, args.model)
    try:
        latencies(url, data, 1, 5)  # warm the connection path; the model is already warm
        figures: dict[str, float] = {"cold_start_s": round(cold_start, 2)}
        for clients in (1, 8):
            times, wall, failures = latencies(url, data, clients, max(1, args.requests // clients))
            figures[f"p50_ms_{clients}_client{'s' * (clients > 1)}"] = round(1000 * percentile(times, 50), 1)
            figures[f"p95_ms_{clients}_client{'s' * (clients > 1)}"] = round(1000 * percentile(times, 95), 1)
            figures[f"requests_per_s_{clients}_client{'s' * (clients > 1)}"] = round(len(times) / wall, 1)
            figures[f"failures_{clients}_client{'s' * (clients > 1)}"] = failures
        figures["peak_rss_mb"] = round(rss_mb(process.pid, "VmHWM"), 1)
    finally:
        process.terminate()
        process.wait(timeout=30)

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
