"""Walks a synthetic participant through the portal as a browser without JavaScript would (form
posts, cookies, the code read off the development inbox) and prints, as shell assignments, the
cookies the page benchmark sends: one browser with a bank-account step-up waiting on /code and a
session for /account. Also prints the seconds from "register" to an active account.

    python3 benches/portal_setup.py http://127.0.0.1:18081 > cookies.sh
"""
import json
import re
import sys
import time
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar

BASE = sys.argv[1]
PASSWORD = "Kopi-Tubruk#2026"


def browser():
    jar = CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    return jar, opener


def get(opener, path):
    with opener.open(BASE + path) as response:
        return response.read().decode()


def post(opener, path, fields):
    data = urllib.parse.urlencode(fields).encode()
    try:
        with opener.open(BASE + path, data=data) as response:
            return response.geturl(), response.read().decode()
    except urllib.error.HTTPError as error:
        return error.geturl(), error.read().decode()


def csrf(html):
    return re.search(r'name="csrf" value="([0-9a-f]+)"', html).group(1)


def newest_code(after):
    for _ in range(200):
        with urllib.request.urlopen(BASE + "/dev/inbox.json?limit=5") as response:
            inbox = json.load(response)
        if inbox and inbox[0]["handed_off_at"] and len(inbox) > after:
            match = re.search(r"\b(\d{6})\b", inbox[0]["text"])
            if match:
                return match.group(1)
        time.sleep(0.02)
    raise SystemExit("no code reached the development inbox")


def inbox_size():
    with urllib.request.urlopen(BASE + "/dev/inbox.json?limit=200000") as response:
        return len(json.load(response))


def participant(index):
    """The index-th active synthetic participant of seed 1 (the demo registry) without an account."""
    import subprocess
    binary = sys.argv[2] if len(sys.argv) > 2 else "target/release/gerbang"
    rows = subprocess.run([binary, "participants", "generate", "--count", "50", "--seed", "1"],
                          capture_output=True, text=True, check=True).stdout.splitlines()[1:]
    active = [row.split(",") for row in rows if ",active," in row]
    nik, birth = active[index][0], active[index][5]
    y, m, d = birth.split("-")
    return nik, f"{d}-{m}-{y}"


def cookie_header(jar):
    return "; ".join(f"{c.name}={c.value}" for c in jar)


nik, birth = participant(0)
jar, opener = browser()
started = time.monotonic()
html = get(opener, "/register")
url, html = post(opener, "/register", {"csrf": csrf(html), "identifier": nik, "birth_date": birth,
                                       "captcha_token": "test", "captcha_answer": "ok"})
assert url.endswith("/register/contact"), url
before = inbox_size()
url, html = post(opener, "/register/contact", {"csrf": csrf(html), "email": f"{nik}@example.com",
                                               "channel": "email", "password": PASSWORD,
                                               "password_confirmation": PASSWORD})
assert url.endswith("/code"), url
code = newest_code(before)
url, html = post(opener, "/code", {"csrf": csrf(html), "code": code})
assert url.endswith("/login"), url
registered = time.monotonic() - started
before = inbox_size()
url, html = post(opener, "/login", {"csrf": csrf(html), "identifier": nik, "password": PASSWORD})
code = newest_code(before)
url, html = post(opener, "/code", {"csrf": csrf(html), "code": code})
assert url.endswith("/account"), url
session = cookie_header(jar)
url, html = post(opener, "/account/bank", {"csrf": csrf(html), "bank": "BRI",
                                           "account_number": "0123456789", "holder": "Bench"})
assert url.endswith("/code"), url
print(f"ACCOUNT_COOKIE='{session}'")
print(f"CODE_COOKIE='{cookie_header(jar)}'")
print(f"REGISTERED_SECONDS={registered:.3f}")
