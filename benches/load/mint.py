#!/usr/bin/env python3
"""Mints the load benchmark's tokens: HS256 (secret file) or ES256 (P-256 key, signed by openssl).

usage: mint.py hs256 SECRET_FILE ISS ROLE
       mint.py es256 KEY_PEM ISS ROLE
Prints one compact JWS valid for two hours.
"""
import base64
import hashlib
import hmac
import json
import subprocess
import sys
import time


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def der_to_raw(sig: bytes) -> bytes:
    """ECDSA DER (SEQUENCE of two INTEGERs) to the JWS form r || s, 32 bytes each."""
    assert sig[0] == 0x30, "DER sequence"
    i = 2 if sig[1] < 0x80 else 2 + (sig[1] & 0x7F)
    out = b""
    for _ in range(2):
        assert sig[i] == 0x02, "DER integer"
        n = sig[i + 1]
        v = sig[i + 2 : i + 2 + n].lstrip(b"\x00")
        out += v.rjust(32, b"\x00")
        i += 2 + n
    return out


def main() -> None:
    alg, key, iss, role = sys.argv[1:5]
    now = int(time.time())
    claims = {
        "iss": iss,
        "sub": "load-user",
        "tenant": "t1",
        "roles": [role],
        "iat": now,
        "nbf": now,
        "exp": now + 7200,
    }
    header = {"alg": alg.upper(), "typ": "JWT"}
    signing_input = (
        b64(json.dumps(header, separators=(",", ":")).encode())
        + "."
        + b64(json.dumps(claims, separators=(",", ":")).encode())
    )
    if alg == "hs256":
        secret = open(key, "rb").read()
        sig = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    elif alg == "es256":
        der = subprocess.run(
            ["openssl", "dgst", "-sha256", "-sign", key],
            input=signing_input.encode(),
            capture_output=True,
            check=True,
        ).stdout
        sig = der_to_raw(der)
    else:
        sys.exit(f"unknown algorithm {alg}")
    print(signing_input + "." + b64(sig))


if __name__ == "__main__":
    main()
