#!/usr/bin/env python3
"""Load generator for benches/delivery.sh: POST /v1/verifications over keep-alive HTTP/1.1
connections (Python standard library only: asyncio streams, HTTP written by hand).

  delivery_load.py rate  --port P --rate R --seconds S --out FILE   # open loop at R starts/s
  delivery_load.py burst --port P --count N --out FILE              # N starts, as fast as accepted
  delivery_load.py surge --port P --rate R --seconds S --out FILE   # open loop, mixed purposes

`surge` is `rate` with the purposes of a peak day mixed in (per 10 requests: 6 registrations, 3
sign-ins on a new device, 1 step-up confirming a bank account change), and each line gains the
purpose and, for a refusal, its `code`: `to sent status answered purpose code`.

Destination i is a distinct mobile number; 100 numbers per block of 10,000 (the number minus its
last four digits), spread over nine prefixes, so the default rate limits (5 per destination per
15 min, 200 per block per hour) refuse nothing. The last four digits are 5000-5099, none of which
the test SMSC treats specially.

`rate` schedules request i at start + i/R (open loop): a ticker hands due requests to a pool of
connections; a request waits only when every connection is busy, and that wait is reported as the
schedule lag. Every request writes one line to FILE: `to sent status answered`, times in Unix
seconds (time.time(), the clock the SMSC stamps its log with). The summary goes to stdout.
"""
import argparse
import asyncio
import json
import sys
import time

# A peak day's mix, per 10 requests (surge mode).
MIX = ["registration", "login_new_device", "registration", "registration", "login_new_device",
       "registration", "step_up", "registration", "login_new_device", "registration"]
PREFIXES = ["0811", "0812", "0813", "0821", "0822", "0823", "0851", "0852", "0853"]


def destination(i):
    block, within = divmod(i, 100)
    prefix = PREFIXES[block % len(PREFIXES)]
    return f"{prefix}{block // len(PREFIXES):04d}{5000 + within:04d}"


def percentile(sorted_values, p):
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, round((len(sorted_values) - 1) * p))]


class Connection:
    def __init__(self, port):
        self.port = port
        self.reader = None
        self.writer = None

    async def open(self):
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)

    async def start(self, to, purpose="registration"):
        """One start; returns (sent, status, answered, code). Reconnects once if the server hung up."""
        fields = {"purpose": purpose, "channel": "sms", "to": to}
        if purpose == "step_up":
            fields["action"] = "bank_account_change"
            fields["details"] = {"bank_account": "1234567890"}
        body = json.dumps(fields).encode()
        request = (
            b"POST /v1/verifications HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body
        )
        for attempt in range(2):
            if self.writer is None:
                await self.open()
            sent = time.time()
            try:
                self.writer.write(request)
                head = await self.reader.readuntil(b"\r\n\r\n")
                status = int(head.split(b" ", 2)[1])
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                    elif name.strip().lower() == b"connection" and value.strip().lower() == b"close":
                        self.writer = None
                answer = await self.reader.readexactly(length) if length else b""
                code = "-"
                if status >= 400:
                    try:
                        code = json.loads(answer).get("code", "-")
                    except ValueError:
                        pass
                return sent, status, time.time(), code
            except (ConnectionError, asyncio.IncompleteReadError):
                # Only a request never answered is retried: the server closed an idle connection.
                self.writer = None
                if attempt == 1:
                    return sent, 0, time.time(), "-"
        return sent, 0, time.time(), "-"


async def run_rate(args):
    queue = asyncio.Queue()
    records = []
    lags = []
    connections = [Connection(args.port) for _ in range(args.connections)]
    for c in connections:
        await c.open()
    total = int(args.rate * args.seconds)

    async def worker(c):
        while True:
            item = await queue.get()
            if item is None:
                return
            i, scheduled = item
            to = destination(args.offset + i)
            purpose = "registration"
            if args.mode == "surge":
                purpose = MIX[i % len(MIX)]
            sent, status, answered, code = await c.start(to, purpose)
            lags.append(sent - scheduled)
            records.append((to, sent, status, answered, purpose, code))

    workers = [asyncio.create_task(worker(c)) for c in connections]
    started = time.time()
    issued = 0
    while issued < total:
        now = time.time()
        due = min(total, int((now - started) * args.rate) + 1)
        while issued < due:
            queue.put_nowait((issued, started + issued / args.rate))
            issued += 1
        await asyncio.sleep(max(0.0, started + issued / args.rate - time.time()))
    for _ in workers:
        queue.put_nowait(None)
    await asyncio.gather(*workers)
    finished = max(r[1] for r in records)
    return records, started, finished, lags


async def run_burst(args):
    records = []
    next_index = 0
    connections = [Connection(args.port) for _ in range(args.connections)]
    for c in connections:
        await c.open()

    async def worker(c):
        nonlocal next_index
        while next_index < args.count:
            i = next_index
            next_index += 1
            to = destination(args.offset + i)
            sent, status, answered, code = await c.start(to)
            records.append((to, sent, status, answered, "registration", code))

    started = time.time()
    await asyncio.gather(*(worker(c) for c in connections))
    return records, started, max(r[3] for r in records), []


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["rate", "burst", "surge"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--rate", type=float, default=500)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--offset", type=int, default=0)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    run = run_burst if args.mode == "burst" else run_rate
    records, started, finished, lags = asyncio.run(run(args))
    with open(args.out, "w") as out:
        for to, sent, status, answered, purpose, code in records:
            if args.mode == "surge":
                out.write(f"{to} {sent:.6f} {status} {answered:.6f} {purpose} {code}\n")
            else:
                out.write(f"{to} {sent:.6f} {status} {answered:.6f}\n")
    ok = [r for r in records if 200 <= r[2] < 300]
    statuses = {}
    for r in records:
        statuses[r[2]] = statuses.get(r[2], 0) + 1
    http = sorted((r[3] - r[1]) * 1000 for r in ok)
    elapsed = finished - started
    line = (
        f"requests={len(records)} acknowledged={len(ok)} statuses={statuses} "
        f"elapsed_s={elapsed:.2f} achieved_per_s={len(records) / elapsed:.0f} "
        f"http_p50_ms={percentile(http, 0.5):.2f} http_p99_ms={percentile(http, 0.99):.2f} "
        f"http_max_ms={percentile(http, 1.0):.2f}"
    )
    if lags:
        lags.sort()
        line += f" lag_p99_ms={percentile(lags, 0.99) * 1000:.2f} lag_max_ms={lags[-1] * 1000:.2f}"
    print(line)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
