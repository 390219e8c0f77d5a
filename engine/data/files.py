"""Which files are images, what format their bytes really hold, and a file's checksum.

Cheap on purpose (no numpy, PIL or torch): ``engine.datasets`` uses it before anything heavy loads.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

__all__ = ["IMAGE_EXTENSIONS", "SUFFIX_FORMATS", "format_of", "file_hash"]

# file name ending -> the format that name promises (compared case-insensitively)
SUFFIX_FORMATS = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".gif": "GIF", ".bmp": "BMP", ".webp": "WEBP",
                  ".tif": "TIFF", ".tiff": "TIFF"}
IMAGE_EXTENSIONS = tuple(SUFFIX_FORMATS)
_SIGNATURES = {b"\xff\xd8\xff": "JPEG", b"\x89PNG": "PNG", b"GIF8": "GIF", b"BM": "BMP", b"RIFF": "WEBP",
               b"II*\x00": "TIFF", b"MM\x00*": "TIFF"}


def format_of(head: bytes) -> str | None:
    """The image format a file's first bytes announce ("JPEG", "PNG", ...), or None."""
    return next((fmt for sig, fmt in _SIGNATURES.items() if head.startswith(sig)), None)


def file_hash(path: str | Path, algorithm: str = "sha256", chunk_size: int = 1 << 20) -> str:
    """The hex digest of a file, read in chunks (an 800 MB archive never sits in memory)."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()
