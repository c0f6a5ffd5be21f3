"""Latency of POST /api/v1/routing/preview through a real server, against a baseline endpoint.

Starts `hotline serve` on a fresh data dir (or the configured HOTLINE_DATABASE_URL /
HOTLINE_REDIS_URL), seeds the reference data, then sends requests one after another over a
keep-alive connection. The baseline is GET /api/v1/auth/me measured in the same run: the same
framework, authentication and database round trip without routing, so the ratio shows what
routing itself costs on this (noisy) machine.

    python bench/bench_preview.py [--requests 2000]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

CASES = [
    {"text": "商家拒绝退款", "address": "香洲区唐家湾镇金鼎", "matter_code": "SC-01"},
    {"text": "饭店油烟扰民", "address": "梅溪牌坊附近"},
    {"text": "工厂偷排废水", "address": "斗门区东澳村", "matter_code": "HB-01"},
    {"text": "的士拒载", "address": "拱北口岸", "matter_code": "JT-01"},
    {"text": "小区物业乱收费", "address": "横琴新区宝华路"},
    {"text": "路灯不亮", "address": "中山市坦洲镇", "matter_code": "CG-04"},
    {"text": "工地夜间施工噪音", "address": "高栏港区平沙镇", "matter_code": "ZJ-02"},
    {"text": "社保卡丢了怎么补办", "address": ""},
]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def measure(call, n: int) -> list[float]:
    timings = []
    for i in range(n):
        started = time.perf_counter()
        response = call(i)
        timings.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise SystemExit(f"request failed: {response.status_code} {response.text}")
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()

    data_dir = Path(tempfile.mkdtemp(prefix="bench-preview-"))
    env = dict(os.environ, HOTLINE_DATA_DIR=str(data_dir), HOTLINE_LOG_LEVEL="WARNING")
    hotline = [sys.executable, "-m", "hotline"]
    subprocess.run([*hotline, "seed"], env=env, check=True, capture_output=True)
    subprocess.run(
        [*hotline, "user", "create", "bench", "--role", "agent", "--password", "bench-password"],
        env=env,
        check=True,
        capture_output=True,
    )
    port = free_port()
    server = subprocess.Popen([*hotline, "serve", "--port", str(port)], env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=10) as client:
            for _ in range(200):
                try:
                    if client.get("/healthz").status_code in (200, 503):
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            token = client.post(
                "/api/v1/auth/token", data={"username": "bench", "password": "bench-password"}
            ).json()["access_token"]
            client.headers["Authorization"] = f"Bearer {token}"

            def preview(i: int) -> httpx.Response:
                return client.post("/api/v1/routing/preview", json=CASES[i % len(CASES)])

            def baseline(i: int) -> httpx.Response:
                return client.get("/api/v1/auth/me")

            measure(preview, 100)  # warm-up: jieba dictionary, rule-set cache, connections
            measure(baseline, 100)
            # Interleave rounds so that background noise hits both series alike.
            preview_ms: list[float] = []
            baseline_ms: list[float] = []
            rounds = 5
            for _ in range(rounds):
                preview_ms += measure(preview, args.requests // rounds)
                baseline_ms += measure(baseline, args.requests // rounds)
    finally:
        server.terminate()
        server.wait(timeout=15)
        from hotline.core.redis import stop_embedded_redis

        stop_embedded_redis(data_dir)

    backend = "PostgreSQL" if os.environ.get("HOTLINE_DATABASE_URL") else "SQLite"
    print(f"POST /api/v1/routing/preview, {len(preview_ms)} sequential requests, {backend}")
    print(f"{'series':<28}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'mean ms':>9}")
    for name, values in (("preview", preview_ms), ("baseline GET /auth/me", baseline_ms)):
        print(
            f"{name:<28}{percentile(values, 50):>9.2f}{percentile(values, 95):>9.2f}"
            f"{percentile(values, 99):>9.2f}{statistics.mean(values):>9.2f}"
        )
    ratio = percentile(preview_ms, 99) / percentile(baseline_ms, 99)
    print(f"p99 ratio preview / baseline: {ratio:.2f}")


if __name__ == "__main__":
    main()
