"""Signs a staff member in to the console as a browser would (cookies, the form token, the
authenticator code computed here per RFC 6238 from the base32 secret `gerbang staff add` printed)
and prints, as shell assignments, the cookie and form token the search benchmark sends.

    python3 benches/console_setup.py http://127.0.0.1:18082 NAME PASSWORD BASE32SECRET
"""
import base64
import hashlib
import hmac
import re
import struct
import sys
import time
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar

BASE, NAME, PASSWORD, SECRET = sys.argv[1:5]


def totp(secret, at):
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    digest = hmac.new(key, struct.pack(">Q", int(at) // 30), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset:offset + 4])[0] & 0x7FFFFFFF
    return "%06d" % (value % 1_000_000)


jar = CookieJar()
opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
with opener.open(BASE + "/staff/login") as response:
    html = response.read().decode()
token = re.search(r'name="csrf" value="([0-9a-f]+)"', html).group(1)
fields = {"csrf": token, "name": NAME, "password": PASSWORD, "code": totp(SECRET, time.time())}
with opener.open(BASE + "/staff/login", data=urllib.parse.urlencode(fields).encode()) as response:
    assert response.geturl().endswith("/staff"), response.geturl()
cookies = "; ".join(f"{c.name}={c.value}" for c in jar if c.name in ("gb_csrf", "gb_staff"))
print(f"COOKIE='{cookies}'")
print(f"CSRF='{token}'")
