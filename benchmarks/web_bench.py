"""haslo web site figures: page views and password changes per second against `mailsuite serve`.

Starts the real server (plain HTTP on loopback, bcrypt at the configured cost), then prints:

- GET /zmien-haslo: requests/s and latency (p50, p99) from C concurrent clients
- POST /zmien-haslo with a wrong password (one bcrypt check each): requests/s and latency
- a full successful change (bcrypt check + bcrypt hash) for U users at once: latency

bcrypt runs in the server's worker pool, so the page views measured at the same time as the
password posts show whether the event loop stays responsive.

Usage: python benchmarks/web_bench.py [--clients C] [--seconds T] [--users U] [--rounds R]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.conftest import Suite

TEMP = "Tymczas0wy1"


def summary(name: str, latencies: list[float], seconds: float) -> None:
    latencies.sort()
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000
    print(
        f"{name:<44} {len(latencies) / seconds:8.1f} req/s   p50 {p50:7.1f} ms   p99 {p99:7.1f} ms"
    )


async def csrf(session: aiohttp.ClientSession, url: str) -> str:
    async with session.get(url) as response:
        return re.search(r'name="csrf" value="([^"]+)"', await response.text()).group(1)


async def hammer(
    url: str, clients: int, seconds: float, post: dict[str, str] | None
) -> list[float]:
    latencies: list[float] = []
    deadline = time.monotonic() + seconds

    async def client() -> None:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
            token = await csrf(session, url)
            while time.monotonic() < deadline:
                start = time.perf_counter()
                if post is None:
                    async with session.get(url) as response:
                        await response.read()
                else:
                    async with session.post(url, data={"csrf": token, **post}) as response:
                        await response.read()
                latencies.append(time.perf_counter() - start)

    await asyncio.gather(*(client() for _ in range(clients)))
    return latencies


async def changes(url: str, users: list[str]) -> list[float]:
    async def one(address: str) -> float:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
            token = await csrf(session, url)
            fields = {
                "konto": address,
                "aktualne": TEMP,
                "nowe": "Nowehaslo7",
                "powtorzone": "Nowehaslo7",
            }
            start = time.perf_counter()
            async with session.post(url, data={"csrf": token, **fields}) as response:
                assert response.status == 200, await response.text()
            return time.perf_counter() - start

    return list(await asyncio.gather(*(one(a) for a in users)))


async def run(args: argparse.Namespace, suite: Suite) -> None:
    url = f"http://127.0.0.1:{suite.port('web')}/zmien-haslo"
    summary("GET /zmien-haslo", await hammer(url, args.clients, args.seconds, None), args.seconds)
    # Distinct unknown logins: throttling counts per account and per address.
    wrong = {"konto": "nikt@example.test", "aktualne": "zle", "nowe": "x", "powtorzone": "x"}
    mixed_get, mixed_post = await asyncio.gather(
        hammer(url, args.clients, args.seconds, None),
        hammer(url, 2, args.seconds, wrong),
    )
    summary("GET while wrong-password POSTs run", mixed_get, args.seconds)
    summary("POST wrong password (1 bcrypt)", mixed_post, args.seconds)
    users = [f"user{i}@example.test" for i in range(args.users)]
    for address in users:
        suite.add_user(address, TEMP, temporary=True)
    start = time.perf_counter()
    latencies = await changes(url, users)
    summary(f"POST successful change, {args.users} at once", latencies, time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=10, help="bcrypt cost (production: 12)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        overrides = {
            "accounts": {"bcrypt_rounds": args.rounds},
            "throttle": {"max_failures_per_ip": 10**9, "max_failures_per_account": 10**9},
            "log_level": "WARNING",
        }
        suite = Suite(Path(tmp), overrides).start()
        try:
            print(
                f"mailsuite serve, web on 127.0.0.1:{suite.port('web')}, bcrypt cost {args.rounds}"
            )
            asyncio.run(run(args, suite))
        finally:
            suite.close()


if __name__ == "__main__":
    main()
