"""Writes the seed corpus in corpus/wire/ (run from runtime/fuzz/: python3 make_seeds.py).

Each seed is the fuzz target's input: 4 bytes of settings, the 8-byte hello, then frames laid
out as docs/PROTOCOL.md (and runtime/tests/behaviour/raw/mod.rs) describe them.
"""

import struct


def varint(n):
    if n <= 250:
        return bytes([n])
    if n <= 0xFFFF:
        return b"\xfb" + struct.pack("<H", n)
    if n <= 0xFFFFFFFF:
        return b"\xfc" + struct.pack("<I", n)
    return b"\xfd" + struct.pack("<Q", n)


def string(s):
    b = s.encode()
    return varint(len(b)) + b


def frame(body):
    return struct.pack(">I", len(body)) + body


def request(id, service, method, timeout, payload):
    t = b"\x00" if timeout is None else b"\x01" + varint(timeout)
    return frame(b"\x00" + varint(id) + string(service) + string(method) + t + payload)


def cancel(id):
    return frame(b"\x01" + varint(id))


def response_ok(id, payload):
    return frame(b"\x02" + varint(id) + b"\x00" + payload)


def response_app_error(id, payload):
    return frame(b"\x02" + varint(id) + b"\x01" + payload)


def response_status(id, code, message):
    return frame(b"\x02" + varint(id) + b"\x02" + varint(code) + string(message))


def ping(nonce):
    return frame(b"\x03" + varint(nonce))


def pong(nonce):
    return frame(b"\x04" + varint(nonce))


def goaway(code, message):
    return frame(b"\x05" + varint(code) + string(message))


HELLO = b"TIDL\x01\x00\x00\x00"
# Limit 65536, chunks of up to 7 bytes, no large-frame path, chunk seed 0x2a.
SETTINGS = bytes([0xFF, 0xFF, 0x03, 0x2A])
# Limit 4096, chunks of up to 3 bytes, large frames from 16 bytes.
SETTINGS_LARGE = bytes([0xFF, 0x0F, (2 << 3) | 0x02, 0x07])

seeds = {
    "hello": SETTINGS + HELLO,
    "hello-busy": SETTINGS + b"TIDL\x01\x00\x02\x00",
    "hello-refused": SETTINGS + b"TIDL\x02\x03\x01\x00",
    "request": SETTINGS + HELLO + request(1, "Example", "echo", 1500, string("hello world")),
    "request-no-timeout": SETTINGS + HELLO + request(300, "Echo", "sleep", None, varint(70000)),
    "response": SETTINGS + HELLO + response_ok(1, string("hello world")),
    "response-app-error": SETTINGS + HELLO + response_app_error(2, string("out of stock")),
    "response-status": SETTINGS + HELLO + response_status(3, 4, "délai dépassé"),
    "cancel": SETTINGS + HELLO + cancel(1),
    "ping-pong": SETTINGS + HELLO + ping(7) + pong(7),
    "goaway": SETTINGS + HELLO + goaway(14, "the server is shutting down"),
    "session": SETTINGS_LARGE
    + HELLO
    + request(1, "Example", "echo", None, string("x" * 40))
    + ping(1 << 40)
    + cancel(1)
    + response_ok(1, b"\x00")
    + response_ok(2, b"\x01" + varint(1 << 33))
    + goaway(8, "bye"),
    "too-large": bytes([0x10, 0x00, 0x00, 0x00]) + HELLO + cancel(1) + frame(b"\x01" * 64),
}

for name, data in seeds.items():
    with open(f"corpus/wire/seed-{name}", "wb") as f:
        f.write(data)
