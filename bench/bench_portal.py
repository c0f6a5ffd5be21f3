"""Citizens on the mobile portal beside the usual hotline load, on PostgreSQL and Redis.

Sets up the system as bench_typhoon.py does (`hotline db upgrade`, `hotline seed`, users, N
`hotline serve` processes and M workers; a fresh database on the server of
HOTLINE_DATABASE_URL, or with --in-place the database that URL names, emptied first) and runs,
for --seconds:

  the usual hotline load   bench_typhoon's clients at an ordinary day's rates: call events
                           (--call-events/s), agents filing tickets (--tickets/s) after a
                           routing preview, --consoles console websockets, --walls walls
                           reloading their figures as events come;
  --citizens portal users  each as the portal's pages do: open /m/submit, the place pickers,
                           the matter suggestion for the text, a code to the phone (read from
                           the development SMS outbox, as a citizen reads the text message),
                           the code checked, the request submitted (a third with a photo), the
                           tracking page opened, then its status polled every --poll seconds;
                           a quarter of them search the knowledge base; a quarter submit the
                           same text again a minute later (merged into the first ticket).

Each citizen comes from an address of their own (X-Forwarded-For from a trusted proxy,
HOTLINE_FORWARDED_ALLOW_IPS), so the per-address limits apply as they would in production and
the global limit sees everyone. Targets: no errors (a 429 is an error here), portal p95 under
300 ms; the hotline's own figures are reported as bench_typhoon reports them.

    HOTLINE_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test_h6 \\
    HOTLINE_REDIS_URL=redis://127.0.0.1:6379/6 \\
    python bench/bench_portal.py --in-place --redis-db 6 [--seconds 120] [--citizens 200]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import random
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_tickets import (  # noqa: E402 - the shared helpers live beside this script
    bench_env,
    fresh_database,
    hotline,
    libpq_url,
    private_redis,
)
from bench_typhoon import (  # noqa: E402
    CpuTotals,
    Load,
    Window,
    create_users,
    percentile,
    report,
    running_system,
)

DEFAULT_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
PORTAL_P95_MS = 300.0
TEXTS = [
    "小区门口的路灯坏了一个多星期，晚上很黑，老人小孩出行不安全",
    "楼下餐馆油烟直排，家里窗户都不敢开，请有关部门处理",
    "在商场买的电饭煲用了两天就坏了，商家拒绝退款",
    "公交站台的遮雨棚破了，下雨天等车全身湿透",
    "工地夜间施工噪音太大，凌晨两点还在打桩",
    "我想咨询一下社保卡丢了怎么补办，需要带什么材料",
    "路边井盖松动，车辆经过时哐哐响，担心有人踩空",
    "小区物业乱收停车费，没有公示收费标准",
]
PLACES = [("XZ", "440402005", "夏湾路88号"), ("XZ", "440402001", "凤凰北路"), ("DM", "", "井岸镇")]
KB_QUERIES = ["社保卡", "积分入学", "公积金", "居住证"]


def _photo() -> bytes:
    from PIL import Image

    rng = random.Random(7)
    image = Image.new("RGB", (1200, 900))
    image.putdata([(rng.randrange(256), 90, 60) for _ in range(1200 * 900)])
    out = io.BytesIO()
    image.save(out, "JPEG", quality=80)
    return out.getvalue()


def reset_in_place(database_url: str) -> None:
    """Empty the database the URL names (every table and type of its public schema)."""
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")


class Outbox:
    """The development SMS sender's file, followed as it grows: the codes by phone."""

    def __init__(self, path: Path) -> None:
        self.path, self.offset = path, 0
        self.codes: dict[str, str] = {}
        self.changed = asyncio.Event()

    async def follow(self) -> None:
        while True:
            if self.path.exists():
                with self.path.open("rb") as f:
                    f.seek(self.offset)
                    chunk = f.read()
                complete = chunk[: chunk.rfind(b"\n") + 1]
                self.offset += len(complete)
                for line in complete.decode().splitlines():
                    message = json.loads(line)
                    self.codes[message["phone"]] = message["text"].split("验证码是")[1][:6]
                if complete:
                    self.changed.set()
                    self.changed = asyncio.Event()
            await asyncio.sleep(0.05)

    async def code(self, phone: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while (code := self.codes.pop(phone, None)) is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no code texted to {phone}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), 1)
        return code


class Citizen:
    """A shared client with one citizen's own headers on every request."""

    def __init__(self, client: httpx.AsyncClient, headers: dict[str, str]) -> None:
        self.client, self.headers = client, headers

    async def request(self, method: str, path: str, **kw):
        kw["headers"] = {**self.headers, **(kw.get("headers") or {})}
        return await self.client.request(method, path, **kw)


class Portal:
    """The citizens: each a loop over the portal's pages and API, one request at a time."""

    def __init__(self, bases: list[str], outbox: Outbox, args) -> None:
        self.bases, self.outbox, self.args = bases, outbox, args
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.errors: Counter = Counter()
        self.samples: list[str] = []
        self.rng = random.Random(2026)
        self.photo = _photo()
        self.submitted = self.merged = 0
        self.measuring = True

    async def send(self, client: Citizen, kind: str, method: str, path: str, **kw):
        started = time.perf_counter()
        try:
            response = await client.request(method, path, **kw)
        except httpx.HTTPError as exc:
            self._error(kind, f"{type(exc).__name__}: {exc}")
            return None
        if self.measuring:
            self.latency[kind].append((time.perf_counter() - started) * 1000)
        if response.status_code >= 400:
            self._error(kind, f"{response.status_code} {response.text[:200]}")
        return response

    def _error(self, kind: str, what: str) -> None:
        self.errors[kind] += 1
        if len(self.samples) < 10:
            self.samples.append(f"{kind}: {what}")

    async def submit(self, client, phone: str, text: str, with_photo: bool) -> str | None:
        area, town, street = self.rng.choice(PLACES)
        await self.send(client, "page /m/submit", "GET", "/m/submit")
        await self.send(client, "places", "GET", "/api/v1/portal/places")
        suggested = await self.send(
            client, "suggest", "GET", "/api/v1/portal/suggest", params={"q": text}
        )
        # The page preselects the first suggestion, and most citizens keep it.
        matters = suggested.json()["matters"] if suggested and suggested.status_code == 200 else []
        matter = matters[0]["code"] if matters else ""
        sent = await self.send(
            client, "code", "POST", "/api/v1/portal/codes", json={"phone": phone}
        )
        if sent is None or sent.status_code != 202:
            return None
        try:
            code = await self.outbox.code(phone)
        except TimeoutError as exc:
            self._error("code", str(exc))
            return None
        verified = await self.send(
            client, "verify", "POST", "/api/v1/portal/codes/verify",
            json={"phone": phone, "code": code},
        )  # fmt: skip
        if verified is None or verified.status_code != 200:
            return None
        files = {"photo": ("photo.jpg", self.photo, "image/jpeg")} if with_photo else None
        created = await self.send(
            client, "submit" + (" with photo" if with_photo else ""), "POST",
            "/api/v1/portal/requests",
            data={"content": text, "matter_code": matter, "area_code": area, "town_code": town,
                  "address": street},
            files=files, headers={"X-Phone-Token": verified.json()["phone_token"]},
        )  # fmt: skip
        if created is None or created.status_code != 201:
            return None
        self.submitted += 1
        self.merged += created.json()["merged"]
        return created.json()["token"]

    async def citizen(self, n: int, end: float) -> None:
        rng = random.Random(n)
        address = f"10.{n // 250 % 250}.{n % 250}.{rng.randrange(1, 250)}"
        phone = f"135{n:08d}"
        text = rng.choice(TEXTS) + f"（{n}号市民）"
        # One pool per API process for all citizens (a client each would cost this process
        # seconds of CPU to set up, lag that would be charged to the server); each citizen
        # still comes from an address of their own, as a proxy would say.
        client = Citizen(self.clients[n % len(self.clients)], {"X-Forwarded-For": address})
        # Arrivals spread over the first 20 s, as people open a page, not all in one tick.
        await asyncio.sleep(rng.uniform(0, 20))
        token = await self.submit(client, phone, text, with_photo=n % 3 == 0)
        if token is None:
            return
        tracking = {"X-Tracking-Token": token}
        await self.send(client, "page /m/t/{token}", "GET", f"/m/t/{token}")
        again_at = time.monotonic() + 60 if n % 4 == 1 else None
        if n % 4 == 2:
            query = {"q": rng.choice(KB_QUERIES)}
            await self.send(client, "page /m/kb?q=", "GET", "/m/kb", params=query)
        while time.monotonic() < end:
            await self.send(client, "track", "GET", "/api/v1/portal/track", headers=tracking)
            if again_at and time.monotonic() >= again_at:
                again_at = None
                await self.submit(client, phone, text, with_photo=False)
            await asyncio.sleep(self.args.poll * rng.uniform(0.8, 1.2))

    async def run(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        limits = httpx.Limits(max_connections=self.args.citizens, max_keepalive_connections=100)
        self.clients = [
            httpx.AsyncClient(base_url=base, timeout=30, limits=limits) for base in self.bases
        ]
        try:
            await asyncio.gather(*(self.citizen(n, end) for n in range(self.args.citizens)))
        finally:
            for client in self.clients:
                await client.aclose()

    def report(self, seconds: float) -> list[str]:
        every = [v for values in self.latency.values() for v in values]
        print(f"\nportal: {self.args.citizens} citizens for {seconds:.0f} s; "
              f"{self.submitted} submissions ({self.merged} merged into an earlier one), "
              f"{len(every) / seconds:.1f} requests/s")  # fmt: skip
        print(f"  {'series':<30}{'count':>8}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}")
        for kind in sorted(self.latency):
            values = self.latency[kind]
            print(
                f"  {kind:<30}{len(values):>8}{percentile(values, 0.5):>9.1f}"
                f"{percentile(values, 0.95):>9.1f}{percentile(values, 0.99):>9.1f}"
                f"{max(values):>9.1f}  errors {self.errors[kind]}"
            )
        p95 = percentile(every, 0.95)
        print(
            f"  {'portal, all requests':<30}{len(every):>8}{percentile(every, 0.5):>9.1f}"
            f"{p95:>9.1f}{percentile(every, 0.99):>9.1f}{max(every, default=0):>9.1f}"
            f"  target p95 < {PORTAL_P95_MS:.0f} ms"
        )
        for sample in self.samples:
            print(f"  error: {sample}")
        missed = []
        if sum(self.errors.values()):
            missed.append(f"{sum(self.errors.values())} portal errors")
        if not p95 < PORTAL_P95_MS:
            missed.append(f"portal p95 {p95:.0f} ms")
        return missed


async def measure(bases, tokens, cti, processes, args, outbox_path: Path) -> list[str]:
    load = Load(bases, tokens, cti, args)
    cpu = CpuTotals(*processes)
    sockets = await load.connect_all()
    outbox = Outbox(outbox_path)
    follower = asyncio.create_task(outbox.follow())
    portal = Portal(bases, outbox, args)
    try:
        print(f"warm-up {args.warmup:.0f} s (hotline load only)", flush=True)
        await load.run(Window("warm-up", args.call_events, args.tickets), args.warmup)
        await load.settle()
        window = Window("usual hotline load beside the portal", args.call_events, args.tickets)
        print(f"measuring {args.seconds:.0f} s", flush=True)
        before, started = cpu.read(), time.perf_counter()
        await asyncio.gather(load.run(window, args.seconds), portal.run(args.seconds))
        window.cpu = CpuTotals.cores(before, cpu.read(), time.perf_counter() - started)
        await load.settle()
        load.window = None
        report(window)
        missed = portal.report(args.seconds)
        hotline_errors = sum(window.errors.values())
        if hotline_errors:
            missed.append(f"{hotline_errors} hotline errors")
        print(f"\nverdict: {'all targets met' if not missed else 'MISSED: ' + '; '.join(missed)}")
        return missed
    finally:
        follower.cancel()
        for task in sockets:
            task.cancel()
        await asyncio.gather(follower, *sockets, return_exceptions=True)
        for client in load.clients:
            client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--warmup", type=float, default=10)
    parser.add_argument("--citizens", type=int, default=200)
    parser.add_argument("--poll", type=float, default=10, help="seconds between status reads")
    parser.add_argument("--call-events", type=float, default=10, help="call events a second")
    parser.add_argument("--tickets", type=float, default=2, help="tickets filed a second")
    parser.add_argument("--consoles", type=int, default=100)
    parser.add_argument("--walls", type=int, default=3)
    parser.add_argument("--api-processes", type=int, default=2)
    parser.add_argument("--rq-workers", type=int, default=1)
    parser.add_argument("--redis-db", type=int, default=9)
    parser.add_argument(
        "--in-place", action="store_true", help="use (and empty) the database the URL names"
    )
    args = parser.parse_args()

    database_server = os.environ.get("HOTLINE_DATABASE_URL", DEFAULT_DATABASE_URL)
    redis_server = os.environ.get("HOTLINE_REDIS_URL", DEFAULT_REDIS_URL)
    database = (
        contextlib.nullcontext(database_server)
        if args.in_place
        else fresh_database(database_server, "bench_portal")
    )
    with database as database_url, private_redis(redis_server, args.redis_db) as redis_url:
        if args.in_place:
            reset_in_place(database_url)
        env = bench_env(database_url, redis_url)
        env["HOTLINE_CTI_TOKEN"] = cti = f"bench-cti-{random.getrandbits(32):08x}"
        env["HOTLINE_FORWARDED_ALLOW_IPS"] = '["127.0.0.1"]'
        hotline(env, "db", "upgrade")
        hotline(env, "seed")
        tokens = create_users(env, args.consoles, args.walls)
        outbox_path = Path(env["HOTLINE_DATA_DIR"]) / "sms-outbox.jsonl"
        with running_system(env, args.api_processes, args.rq_workers) as (bases, api, workers):
            print(
                f"python {sys.version.split()[0]}; PostgreSQL + Redis; {args.api_processes} API "
                f"processes, {args.rq_workers} rq workers; {os.cpu_count()} cores shared with "
                "the load generator"
            )
            missed = asyncio.run(measure(bases, tokens, cti, (api, workers), args, outbox_path))
        with psycopg.connect(libpq_url(database_url)) as conn:
            by_channel = conn.execute(
                "SELECT channel, count(*) FROM tickets GROUP BY channel ORDER BY channel"
            ).fetchall()
        print(f"tickets by channel: {dict(by_channel)}")
    sys.exit(1 if missed else 0)


if __name__ == "__main__":
    main()
