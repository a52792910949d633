#!/usr/bin/env python3
"""Morpheus Shop loader kit (Python): asks the shop's licence API whether a key is valid on this PC, and believes
the answer only when it is signed by the shop's pinned Ed25519 key and bound to this very request.

    python3 loader_auth.py <auth URL> <key> <uuid> <public key base64>
    exit 0: licence valid (verified); 1: the verified answer refuses the licence; 2: answer not trusted.

Needs Python 3.7+ and PyNaCl or cryptography (Debian: python3-nacl or python3-cryptography; pip: pynacl or
cryptography). In your loader, pin the key as a constant instead of taking it from the command line.

What a cracker tries, and what stops it here:
  - an emulator answering {"success":true}: no signature by the pinned key, refused;
  - a signature by the cracker's own key, listed in X-Signature: only the entry of the pinned key is used;
  - a real signed answer recorded once and replayed: it echoes another nonce (fresh from `secrets` each call);
  - a real answer for another key, PC or product: the echoed key, uuid and product must equal what we sent;
  - one byte of a real answer changed: the signature covers the exact bytes received, never re-serialised JSON;
  - a success body under a refusal status (or the reverse): status and body must agree.
What it cannot stop is a patched loader: see docs/licence-api.md for what helps there.
"""

import base64
import calendar
import hashlib
import http.client
import json
import re
import secrets
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

VALID, REFUSED, UNTRUSTED = 0, 1, 2
MAX_ANSWER_BYTES = 16384  # loader answers are under 1 kB; anything far bigger is not from the shop
MAX_SIGNATURE_ENTRIES = 8  # one per active key, two during a rotation
MAX_CLOCK_SKEW_SECONDS = 600  # docs/licence-api.md: server_time within 10 minutes of our clock
UTC_TIME = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.\d{1,9})?Z")


def _ed25519_verifier():
    """verify(public_key, signature, message) -> bool, from whichever of PyNaCl or cryptography is installed."""
    try:
        from nacl.exceptions import BadSignatureError
        from nacl.signing import VerifyKey

        def verify(public_key, signature, message):
            try:
                VerifyKey(public_key).verify(message, signature)
                return True
            except BadSignatureError:
                return False

        return verify
    except ImportError:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

        def verify(public_key, signature, message):
            try:
                Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
                return True
            except InvalidSignature:
                return False

        return verify


class Untrusted(Exception):
    """The answer cannot be believed: treat it exactly like no answer at all."""


def key_id(public_key):
    """First 16 hex characters of sha256(raw public key), as the shop labels its signatures."""
    return hashlib.sha256(public_key).hexdigest()[:16]


def signature_verifies(header, body, pinned_key, verify):
    """X-Signature: "<key id>:<base64 sig>[, ...]". Only the pinned key's entry counts, checked with the pinned key:
    an entry for any other key (a cracker's own, say) proves nothing."""
    wanted = key_id(pinned_key)
    for entry in header.split(",")[:MAX_SIGNATURE_ENTRIES]:
        label, sep, encoded = entry.partition(":")
        if not sep or label.strip() != wanted:
            continue
        try:
            signature = base64.b64decode(encoded.strip(), validate=True)
        except ValueError:
            continue
        if len(signature) == 64 and verify(pinned_key, signature, body):
            return True
    return False


def utc_seconds(value):
    """ "YYYY-MM-DDTHH:MM:SS[.fraction]Z" to seconds since the epoch, or None."""
    match = UTC_TIME.fullmatch(value) if isinstance(value, str) else None
    if not match:
        return None
    year, month, day, hour, minute, second = (int(g) for g in match.groups())
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour <= 23 and minute <= 59 and second <= 60):
        return None
    try:
        return calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
    except (ValueError, OverflowError):  # year 0000
        return None


def is_count(value):
    # bool is an int in Python: True must not pass for 1 day.
    return type(value) is int and 0 <= value <= 1_000_000


def verify_answer(status, signature_header, body, sent, pinned_key, now, verify):
    """Everything that decides whether to believe an answer: the HTTP status, the X-Signature header (None when
    absent) and the exact body bytes. Returns (VALID, answer) or (REFUSED, answer); raises Untrusted."""
    if signature_header is None:
        raise Untrusted("no X-Signature header")
    # Verify before parsing anything: until then the body is a cracker's as much as the shop's.
    if not signature_verifies(signature_header, body, pinned_key, verify):
        raise Untrusted("no valid signature by the pinned key")
    try:
        answer = json.loads(body.decode("utf-8"))
    except (ValueError, RecursionError):
        raise Untrusted("answer is not JSON") from None
    if not isinstance(answer, dict):
        raise Untrusted("answer is not a JSON object")

    def echoes(field):
        value = answer.get(field)
        return isinstance(value, str) and value == sent[field]

    if not echoes("nonce"):
        raise Untrusted("answer is not for this request (nonce differs)")
    if not (echoes("key") and echoes("uuid") and echoes("product")):
        raise Untrusted("answer is for another key, uuid or product")
    server_time = utc_seconds(answer.get("server_time"))
    if server_time is None:
        raise Untrusted("answer has no valid server_time")
    if abs(server_time - now) > MAX_CLOCK_SKEW_SECONDS:
        raise Untrusted("server_time is more than 10 minutes from this PC's clock")
    success, message = answer.get("success"), answer.get("message")
    if type(success) is not bool or not isinstance(message, str):
        raise Untrusted("answer has no success or message")
    if success:
        # A success is only a success with the 200 that goes with it, and with the licence's remaining time.
        if (
            status != 200
            or not is_count(answer.get("days"))
            or not is_count(answer.get("hours"))
            or utc_seconds(answer.get("expires_at")) is None
        ):
            raise Untrusted("success answer does not match its HTTP status or lacks days/hours/expires_at")
        return VALID, answer
    if not 400 <= status <= 599:
        raise Untrusted("refusal answer does not match its HTTP status")
    return REFUSED, answer


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    # We verify the answer of the URL we chose; a redirect is an unsigned answer like any other.
    def redirect_request(self, *args, **kwargs):
        return None


def product_from_url(url):
    """The product segment of ".../api/<product>/auth", percent-decoded as the shop decodes it."""
    try:
        parts = urllib.parse.urlsplit(url)
        match = re.search(r"/api/([^/]+)/auth/?$", parts.path)
        if parts.scheme not in ("http", "https") or not match:
            return None
        product = urllib.parse.unquote(match.group(1), errors="strict")
    except ValueError:  # a malformed URL, or percent-escapes that are not UTF-8
        return None
    return product if "\x00" not in product else None


def check_licence(auth_url, key, uuid, pinned_key, verify):
    """POSTs {key, uuid, nonce} as JSON to the auth URL and verifies the answer (see verify_answer); returns
    (verdict, answer, HTTP status) or raises Untrusted."""
    # A fresh nonce from the CSPRNG for every call: an answer recorded earlier can never echo it.
    sent = {"key": key, "uuid": uuid, "product": product_from_url(auth_url), "nonce": secrets.token_urlsafe(32)}
    request = urllib.request.Request(
        auth_url,
        data=json.dumps({"key": key, "uuid": uuid, "nonce": sent["nonce"]}).encode("utf-8"),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    opener = urllib.request.build_opener(_NoRedirects)
    try:
        try:
            response = opener.open(request, timeout=20)
        except urllib.error.HTTPError as refusal:  # 4xx/5xx: still an answer, which may be a signed refusal
            response = refusal
        with response:
            status = response.status if hasattr(response, "status") else response.code
            signatures = response.headers.get_all("X-Signature") or []
            body = response.read(MAX_ANSWER_BYTES + 1)
    except (OSError, ValueError, http.client.HTTPException) as error:  # URLError and timeouts are OSErrors
        raise Untrusted(f"network error: {error}") from None
    if len(body) > MAX_ANSWER_BYTES:
        raise Untrusted("answer too large")
    if len(signatures) > 1:
        raise Untrusted("more than one X-Signature header")
    verdict, answer = verify_answer(
        status, signatures[0] if signatures else None, body, sent, pinned_key, time.time(), verify
    )
    return verdict, answer, status


def main(argv):
    if len(argv) != 5:
        print(f"usage: {argv[0]} <auth URL> <key> <uuid> <public key base64>", file=sys.stderr)
        return UNTRUSTED
    auth_url, key, uuid, public_key_b64 = argv[1:]
    try:
        pinned_key = base64.b64decode(public_key_b64, validate=True)
    except ValueError:
        pinned_key = b""
    if len(pinned_key) != 32:
        print("usage: the public key must be the base64 of 32 bytes (GET .../api/public-key)", file=sys.stderr)
        return UNTRUSTED
    if product_from_url(auth_url) is None:
        print("usage: the auth URL must look like https://HOST/Morpheus%20Private/api/<product>/auth", file=sys.stderr)
        return UNTRUSTED
    try:
        verdict, answer, status = check_licence(auth_url, key, uuid, pinned_key, _ed25519_verifier())
    except Exception as reason:  # never exit 1 (what Python does on an uncaught error): 1 means "refused"
        print(f"untrusted: {reason}", file=sys.stderr)
        return UNTRUSTED
    if verdict == VALID:
        print(f"days: {answer['days']}\nhours: {answer['hours']}\nexpires_at: {answer['expires_at']}")
    else:
        print(f"refused: {answer['message']} (HTTP {status})")
    return verdict


if __name__ == "__main__":
    sys.exit(main(sys.argv))
