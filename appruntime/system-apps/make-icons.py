#!/usr/bin/env python3
"""Draws the system apps' launcher icons (icons/icon-96.png, icons/icon-192.png of notes/ and
settings/) with the standard library only. Run it again after changing a design; the PNGs are
committed beside it."""
import math, os, struct, zlib

def png(path, size, pixel):
    rows = b"".join(b"\0" + b"".join(bytes(pixel(x, y, size)) for x in range(size)) for y in range(size))
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0))
    data += chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(data)

def inside_rounded(x, y, size, r):
    u, v = x + 0.5, y + 0.5
    cx = min(max(u, r), size - r)
    cy = min(max(v, r), size - r)
    return (u - cx) ** 2 + (v - cy) ** 2 <= r * r

def notes(x, y, s):
    if not inside_rounded(x, y, s, s * 0.22):
        return (0, 0, 0, 0)
    u, v = x / s, y / s
    # A sheet of paper with three ruled lines on amber.
    if 0.24 <= u <= 0.76 and 0.18 <= v <= 0.82:
        for line in (0.36, 0.50, 0.64):
            if abs(v - line) < 0.025 and u <= (0.66 if line == 0.64 else 0.68) and u >= 0.32:
                return (0xb4, 0x53, 0x09, 255)
        return (0xff, 0xfb, 0xeb, 255)
    return (0xf5, 0x9e, 0x0b, 255)

def settings(x, y, s):
    if not inside_rounded(x, y, s, s * 0.22):
        return (0, 0, 0, 0)
    u, v = x / s - 0.5, y / s - 0.5
    r = math.hypot(u, v)
    a = math.atan2(v, u)
    # A gear: a ring with eight teeth around a hole.
    teeth = 0.30 + (0.06 if math.cos(8 * a) > 0.3 else 0.0)
    if 0.12 <= r <= teeth:
        return (0xe2, 0xe8, 0xf0, 255)
    return (0x33, 0x41, 0x55, 255)

here = os.path.dirname(os.path.abspath(__file__))
for app, draw in (("notes", notes), ("settings", settings)):
    for size in (96, 192):
        png(os.path.join(here, app, "icons", f"icon-{size}.png"), size, draw)
