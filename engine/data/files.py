"""Which files are images, what their bytes really hold, and a file's checksum.

The file signatures (the first bytes that say what a file is) and the JPEG end marker are written
here once: the bad-file checks, the fast JPEG decoder and ``open_data``'s messages all read them.
Cheap on purpose (no numpy, PIL or torch): ``engine.datasets`` uses it before anything heavy loads.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

__all__ = ["IMAGE_EXTENSIONS", "SUFFIX_FORMATS", "SIGNATURES", "format_of", "describe_bytes", "JPEG_END",
           "JPEG_TAIL", "has_jpeg_end", "file_hash"]

# file name ending -> the format that name promises (compared case-insensitively)
SUFFIX_FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".gif": "GIF", ".bmp": "BMP", ".webp": "WEBP",
                  ".tif": "TIFF", ".tiff": "TIFF"}
IMAGE_EXTENSIONS = tuple(SUFFIX_FORMATS)
# A file's first bytes -> (the image format they announce, or None for other files; how a message names
# such a file). The one table of signatures: format_of reads the image formats, describe_bytes every row.
SIGNATURES = {
    b"\xff\xd8\xff": ("JPEG", "a JPEG image"),
    b"\x89PNG": ("PNG", "a PNG image"),
    b"GIF8": ("GIF", "a GIF image"),
    b"BM": ("BMP", "a BMP image"),
    b"RIFF": ("WEBP", "a WEBP image"),
    b"II*\x00": ("TIFF", "a TIFF image"),
    b"MM\x00*": ("TIFF", "a TIFF image"),
    b"PK": (None, "a zip archive"),
    b"\x1f\x8b": (None, "a gzip archive"),
    b"\x80": (None, "a pickle (torch.save)"),
    b"%PDF": (None, "a PDF document"),
}
JPEG_END = b"\xff\xd9"  # the end-of-image marker that closes a complete JPEG
JPEG_TAIL = 4096  # some cameras append a few bytes after the marker: it is looked for in the last 4 KiB


def _signature(head: bytes) -> tuple[str | None, str] | None:
    return next((row for sig, row in SIGNATURES.items() if head.startswith(sig)), None)


def format_of(head: bytes) -> str | None:
    """The image format a file's first bytes announce ("JPEG", "PNG", ...), or None."""
    row = _signature(head)
    return row[0] if row else None


def describe_bytes(head: bytes) -> str | None:
    """What a file's first bytes say it is, for a message ("a JPEG image", "a zip archive", ...), or None."""
    row = _signature(head)
    return row[1] if row else None


def has_jpeg_end(data: bytes) -> bool:
    """Whether ``data`` (a JPEG file's bytes, or at least its last ``JPEG_TAIL``) holds the end marker:
    without it the file was cut short."""
    return JPEG_END in data[-JPEG_TAIL:]


def file_hash(path: str | Path, algorithm: str = "sha256", chunk_size: int = 1 << 20) -> str:
    """The hex digest of a file, read in chunks (an 800 MB archive never sits in memory)."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()
