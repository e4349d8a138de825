#!/usr/bin/env python3
"""A test SMTP server for gerbang's SMTP courier, built on aiosmtpd (an implementation independent
of lettre, the client under test).

    smtp_server.py LOG [--starttls CERT KEY] [--auth USER PASSWORD] [--dkim-record NAME TXT]

Listens on 127.0.0.1 on a free port and prints `LISTENING <port>` once it accepts connections.
Each message it takes is appended to LOG as one JSON line: the envelope, whether the session was
encrypted and who authenticated, the message as Python's `email` package reads it (subject, From,
To, Message-ID, every text part decoded), the raw DKIM-Signature header, and, with --dkim-record,
whether dkimpy verifies the signature against that DNS TXT record.

--starttls offers STARTTLS and refuses MAIL before it. --auth offers AUTH PLAIN and LOGIN (after
STARTTLS when both are given) and refuses MAIL before a successful AUTH.

Faults, chosen by the recipient's local part:
    reject550@...    RCPT  550 5.1.1 <address>: Recipient address rejected: User unknown
    busy421@...      RCPT  421 4.3.2 Service not available, closing transmission channel
    full552@...      RCPT  552 5.2.2 Mailbox full
    grey450@...      RCPT  450 4.2.0 Greylisted, try again later
    spam554@...      DATA  554 5.7.1 Message rejected as spam
    slow@...         DATA  answers only after 5 seconds
"""

import argparse
import asyncio
import email
import email.policy
import json
import secrets
import ssl
import sys

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

RCPT_FAULTS = {
    "reject550": "550 5.1.1 <{address}>: Recipient address rejected: User unknown",
    "busy421": "421 4.3.2 Service not available, closing transmission channel",
    "full552": "552 5.2.2 Mailbox full",
    "grey450": "450 4.2.0 Greylisted, try again later",
}


class Handler:
    def __init__(self, log, dkim_record):
        self.log = log
        self.dkim_record = dkim_record

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@", 1)[0].lower()
        if local in RCPT_FAULTS:
            return RCPT_FAULTS[local].format(address=address)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        locals_ = [rcpt.split("@", 1)[0].lower() for rcpt in envelope.rcpt_tos]
        if "spam554" in locals_:
            return "554 5.7.1 Message rejected as spam"
        if "slow" in locals_:
            await asyncio.sleep(5)
        raw = envelope.original_content or envelope.content
        record = describe(raw, self.dkim_record)
        record.update(
            mail_from=envelope.mail_from,
            rcpt_tos=envelope.rcpt_tos,
            tls=session.ssl is not None,
            login=login_of(session),
        )
        with open(self.log, "a", encoding="utf-8") as log:
            log.write(json.dumps(record) + "\n")
        return "250 2.0.0 Ok: queued as " + secrets.token_hex(5).upper()


def login_of(session):
    if not session.authenticated:
        return None
    data = session.auth_data
    if isinstance(data, LoginPassword):
        return data.login.decode()
    return str(data)


def describe(raw, dkim_record):
    message = email.message_from_bytes(raw, policy=email.policy.default)
    parts = []
    for part in message.walk():
        if part.is_multipart():
            continue
        parts.append(
            {
                "content_type": part.get_content_type(),
                "charset": part.get_content_charset(),
                "transfer_encoding": part.get("Content-Transfer-Encoding"),
                "content": part.get_content(),
            }
        )
    signature = message.get("DKIM-Signature")
    dkim_valid, dkim_log = verify_dkim(raw, dkim_record) if dkim_record else (None, "")
    return {
        "subject": str(message.get("Subject", "")),
        "from": str(message.get("From", "")),
        "to": str(message.get("To", "")),
        "date": str(message.get("Date", "")),
        "message_id": str(message.get("Message-ID", "")),
        "content_type": message.get_content_type(),
        "parts": parts,
        "dkim_signature": None if signature is None else str(signature),
        "dkim_valid": dkim_valid,
        "dkim_log": dkim_log,
        "raw": raw.decode("utf-8", errors="replace"),
    }


def verify_dkim(raw, dkim_record):
    """Whether dkimpy verifies the signature, and its log (which says why not)."""
    import io
    import logging

    import dkim  # dkimpy: only needed by the tests that sign

    name, txt = dkim_record

    def dns(qname, timeout=5):
        wanted = qname.decode() if isinstance(qname, bytes) else qname
        return txt.encode() if wanted.rstrip(".") == name.rstrip(".") else None

    out = io.StringIO()
    logger = logging.getLogger("dkim-check")
    logger.setLevel(logging.DEBUG)
    logger.handlers = [logging.StreamHandler(out)]
    logger.propagate = False
    try:
        valid = bool(dkim.DKIM(raw, logger=logger).verify(dnsfunc=dns))
    except Exception as error:  # a malformed signature is a failed check, not a crash
        logger.error("verify raised %r", error)
        valid = False
    return valid, out.getvalue()


def authenticator(user, password):
    def check(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == user
            and auth_data.password.decode() == password
        )
        return AuthResult(success=ok, handled=False, auth_data=auth_data)

    return check


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("log")
    parser.add_argument("--starttls", nargs=2, metavar=("CERT", "KEY"))
    parser.add_argument("--auth", nargs=2, metavar=("USER", "PASSWORD"))
    parser.add_argument("--dkim-record", nargs=2, metavar=("NAME", "TXT"))
    args = parser.parse_args()

    options = {"hostname": "mx.example.org", "enable_SMTPUTF8": True}
    if args.starttls:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*args.starttls)
        options.update(tls_context=context, require_starttls=True)
    if args.auth:
        options.update(
            authenticator=authenticator(*args.auth),
            auth_required=True,
            auth_require_tls=bool(args.starttls),
        )
    handler = Handler(args.log, args.dkim_record)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, loop=loop, **options), host="127.0.0.1", port=0
    )
    port = server.sockets[0].getsockname()[1]
    print(f"LISTENING {port}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
