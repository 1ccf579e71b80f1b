"""Hostile files made small, for the tests of issue 30: a PNG declaring gigapixels, a GIF of 100,000 frames."""

import struct
import zlib

SIZE = 16


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def bomb_png(path, width=50_000, height=50_000):
    """A valid greyscale PNG header declaring ``width x height`` pixels (2.5 gigapixels by default) whose compressed
    data is a few KB: the first rows of zeros. A reader that decodes before checking the size would allocate GBs."""
    rows = zlib.compress(b"\0" * ((width + 1) * 64), 9)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
                     + _chunk(b"IDAT", rows) + _chunk(b"IEND", b""))
    return path


def many_frame_gif(path, frames=100_000, screen=(SIZE, SIZE)):
    """A GIF of ``frames`` 1x1 frames on a ``screen``-sized canvas (~1 MB for 100,000 frames)."""
    header = b"GIF89a" + struct.pack("<HH", *screen) + bytes([0x80, 0, 0]) + b"\0\0\0\xff\xff\xff"
    frame = b"\x2c" + struct.pack("<HHHH", 0, 0, 1, 1) + b"\0" + b"\x02\x02\x44\x01\x00"
    path.write_bytes(header + frame * frames + b"\x3b")
    return path
