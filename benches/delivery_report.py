#!/usr/bin/env python3
"""Reads what benches/delivery.sh collected and prints the results.

  delivery_report.py latency CLIENT_FILE SMSC_LOG
  delivery_report.py burst CLIENT_FILE SMSC_LOG SAMPLES_FILE
  delivery_report.py surge CLIENT_FILE SMSC_LOG SAMPLES_FILE DROPPED HARD_CAP_SECONDS

surge: CLIENT_FILE lines carry `purpose code` too; DROPPED is the outbox rows gerbang dropped
(expired in the queue or given up), read from the database after the drain.

CLIENT_FILE: `to sent status answered` per request (delivery_load.py). SMSC_LOG: the test SMSC's log
with SMSC_LOG_TIME=1 (`submit <to> ... t=<receive time> text=<hex>`). SAMPLES_FILE: one line a second,
`time vmrss_kb queued claimed` (queued/claimed: outbox rows, `-` when not read).

The client writes national numbers (08...), the SMSC sees international ones (628...): the join
is on 62 + the national number without its 0.
"""
import collections
import sys


def percentile(sorted_values, p):
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, round((len(sorted_values) - 1) * p))]


def read_client(path):
    acknowledged, refused = {}, collections.Counter()
    for line in open(path):
        to, sent, status, answered = line.split()
        status = int(status)
        if 200 <= status < 300:
            acknowledged["62" + to[1:]] = (float(sent), float(answered))
        else:
            refused[status] += 1
    return acknowledged, refused


def read_smsc(path):
    submits = collections.defaultdict(list)
    for line in open(path):
        if not line.startswith("submit "):
            continue
        fields = line.split()
        stamp = next(f for f in fields if f.startswith("t="))
        submits[fields[1]].append(float(stamp[2:]))
    return submits


def arrivals(times, label):
    """How submits reach the SMSC: overall rate, and clusters (< 1 ms apart) with the gaps between."""
    if len(times) < 2:
        return f"   {label}: {len(times)} submits"
    gaps = [(b - a) * 1000 for a, b in zip(times, times[1:])]
    clusters, size = [], 1
    for gap in gaps:
        if gap < 1.0:
            size += 1
        else:
            clusters.append(size)
            size = 1
    clusters.append(size)
    clusters.sort()
    between = sorted(g for g in gaps if g >= 1.0) or [0.0]
    return (
        f"   {label}: {len(times) / (times[-1] - times[0]):.0f} submits/s, in clusters of median "
        f"{percentile(clusters, 0.5)} (p90 {percentile(clusters, 0.9)}) separated by median "
        f"{percentile(between, 0.5):.1f} ms (p90 {percentile(between, 0.9):.1f} ms)"
    )


def delivery_check(acknowledged, submits):
    total = sum(len(times) for times in submits.values())
    missing = [to for to in acknowledged if to not in submits]
    duplicated = {to: len(t) for to, t in submits.items() if len(t) > 1}
    unknown = [to for to in submits if to not in acknowledged]
    return (
        f"acknowledged={len(acknowledged)} smsc_submits={total} distinct={len(submits)} "
        f"missing={len(missing)} duplicated_destinations={len(duplicated)} "
        f"extra_submits={total - len(submits)} not_acknowledged={len(unknown)}"
    )


def latency(client_path, smsc_path):
    acknowledged, refused = read_client(client_path)
    submits = read_smsc(smsc_path)
    full, after_answer = [], []
    for to, (sent, answered) in acknowledged.items():
        if to in submits:
            received = min(submits[to])
            full.append((received - sent) * 1000)
            after_answer.append((received - answered) * 1000)
    full.sort()
    after_answer.sort()
    print("   " + delivery_check(acknowledged, submits) + f" refused={dict(refused)}")
    print(
        f"   request->submit_sm ms: p50={percentile(full, 0.5):.1f} p90={percentile(full, 0.9):.1f} "
        f"p99={percentile(full, 0.99):.1f} max={percentile(full, 1.0):.1f}"
    )
    print(
        f"   answer->submit_sm ms:  p50={percentile(after_answer, 0.5):.1f} "
        f"p99={percentile(after_answer, 0.99):.1f} max={percentile(after_answer, 1.0):.1f} "
        f"(negative: the SMSC had it before the HTTP answer was read)"
    )
    times = sorted(t for ts in submits.values() for t in ts)
    last_sent = max(s for s, _ in acknowledged.values())
    print(arrivals([t for t in times if t <= last_sent], "SMSC while starts ran"))
    print(arrivals([t for t in times if t > last_sent], "SMSC after the last start"))


def burst(client_path, smsc_path, samples_path):
    acknowledged, refused = read_client(client_path)
    submits = read_smsc(smsc_path)
    print("   " + delivery_check(acknowledged, submits) + f" refused={dict(refused)}")
    sent = sorted(s for s, _ in acknowledged.values())
    answered = sorted(a for _, a in acknowledged.values())
    t0 = sent[0]
    accept = answered[-1] - t0
    print(
        f"   accepted {len(acknowledged)} in {accept:.1f} s ({len(acknowledged) / accept:.0f}/s)"
    )
    times = sorted(t for ts in submits.values() for t in ts)
    if not times:
        return
    per_second = collections.Counter(int(t - t0) for t in times)
    first, last = min(per_second), max(per_second)
    counts = [per_second.get(s, 0) for s in range(first, last + 1)]
    # Whole seconds only: the first and last are partial.
    steady = sorted(counts[1:-1]) or counts
    print(
        f"   SMSC: first submit at +{times[0] - t0:.2f} s, last at +{times[-1] - t0:.2f} s; "
        f"drain {len(times) / (times[-1] - times[0]):.0f}/s overall; per whole second "
        f"median={percentile(steady, 0.5)} min={steady[0]} max={steady[-1]}"
    )
    print(arrivals([t for t in times if t <= answered[-1]], "SMSC while accepting"))
    print(arrivals([t for t in times if t > answered[-1]], "SMSC after the last start"))
    print("   submits per second (from the first request): " + " ".join(
        f"{s}:{c}" for s, c in zip(range(first, last + 1), counts)))
    rows = []
    for line in open(samples_path):
        at, rss, queued, claimed = line.split()
        rows.append((float(at) - t0, int(rss), queued, claimed))
    if rows:
        print("   samples (s since first request, VmRSS MB, outbox queued, claimed):")
        print("   " + " ".join(
            f"{at:.0f}:{rss / 1024:.0f}MB/q{queued}/c{claimed}" for at, rss, queued, claimed in rows))
        accepting = [r[1] for r in rows if r[0] <= accept]
        draining = [r[1] for r in rows if r[0] > accept]
        for name, values in (("accept", accepting), ("drain", draining)):
            if values:
                print(
                    f"   VmRSS during {name}: first {values[0] / 1024:.0f} MB, max "
                    f"{max(values) / 1024:.0f} MB, last {values[-1] / 1024:.0f} MB"
                )


def surge(client_path, smsc_path, samples_path, dropped, hard_cap):
    rows = [line.split() for line in open(client_path)]
    submits = read_smsc(smsc_path)
    by_purpose = collections.defaultdict(collections.Counter)
    accepted = {}
    for to, sent, status, answered, purpose, code in rows:
        status = int(status)
        outcome = "accepted" if 200 <= status < 300 else code if status else "no_answer"
        by_purpose[purpose][outcome] += 1
        if 200 <= status < 300:
            accepted["62" + to[1:]] = (float(sent), purpose)
    sent_times = sorted(float(r[1]) for r in rows)
    t0, last = sent_times[0], sent_times[-1]
    print(f"   offered {len(rows)} in {last - t0:.1f} s ({len(rows) / (last - t0):.0f}/s)")
    outcomes = sorted({o for c in by_purpose.values() for o in c})
    print("   purpose            " + " ".join(f"{o:>16}" for o in outcomes))
    for purpose in ("registration", "login_new_device", "step_up"):
        counts = by_purpose.get(purpose, {})
        print(f"   {purpose:<18} " + " ".join(f"{counts.get(o, 0):>16}" for o in outcomes))
    in_time, late, lost, waits = 0, 0, 0, []
    waits_by_purpose = collections.defaultdict(list)
    for to, (sent, purpose) in accepted.items():
        if to not in submits:
            lost += 1
            continue
        wait = min(submits[to]) - sent
        waits.append(wait)
        waits_by_purpose[purpose].append(wait)
        if wait <= hard_cap:
            in_time += 1
        else:
            late += 1
    waits.sort()
    total_submits = sum(len(t) for t in submits.values())
    print(
        f"   accepted={len(accepted)} submitted_in_time={in_time} submitted_late={late} "
        f"never_submitted={lost} dropped_by_gerbang={dropped} "
        f"(expired in the queue or given up; never_submitted - dropped = lost: {lost - dropped}) "
        f"smsc_submits={total_submits} duplicated={total_submits - len(submits)} "
        f"not_accepted_at_smsc={len([t for t in submits if t not in accepted])}"
    )
    print(
        f"   request->submit_sm of accepted, s: p50={percentile(waits, 0.5):.1f} "
        f"p90={percentile(waits, 0.9):.1f} p99={percentile(waits, 0.99):.1f} "
        f"max={percentile(waits, 1.0):.1f} (hard cap {hard_cap} s)"
    )
    for purpose in ("registration", "login_new_device", "step_up"):
        w = sorted(waits_by_purpose.get(purpose, []))
        if w:
            print(
                f"     {purpose:<18} p50={percentile(w, 0.5):.1f} p99={percentile(w, 0.99):.1f} "
                f"max={percentile(w, 1.0):.1f}"
            )
    times = sorted(t for ts in submits.values() for t in ts)
    if times:
        print(
            f"   SMSC: {len(times)} submits from +{times[0] - t0:.1f} s to +{times[-1] - t0:.1f} s, "
            f"{len(times) / max(times[-1] - times[0], 1e-9):.1f}/s"
        )
    samples = []
    for line in open(samples_path):
        at, rss, queued, claimed = line.split()
        samples.append((float(at) - t0, int(rss), queued, claimed))
    if samples:
        rss = [s[1] / 1024 for s in samples]
        print(
            f"   VmRSS MB: first {rss[0]:.0f}, max {max(rss):.0f}, last {rss[-1]:.0f}; "
            "outbox (s: queued) " + " ".join(
                f"{at:.0f}:{q}" for at, _, q, _ in samples[:: max(1, len(samples) // 20)])
        )


if __name__ == "__main__":
    if sys.argv[1] == "surge":
        surge(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), float(sys.argv[6]))
    elif sys.argv[1] == "latency":
        latency(sys.argv[2], sys.argv[3])
    else:
        burst(sys.argv[2], sys.argv[3], sys.argv[4])
