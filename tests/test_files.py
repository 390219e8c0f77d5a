"""Tests for engine/data/files.py: the one table of file signatures, and the JPEG end marker."""

from __future__ import annotations

import gzip
import io
import pickle
import zipfile

import pytest
from PIL import Image

from engine.data.files import SIGNATURES, SUFFIX_FORMATS, describe_bytes, format_of, has_jpeg_end


def _image_bytes(fmt: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 24), (200, 120, 40)).save(out, format=fmt)
    return out.getvalue()


@pytest.mark.parametrize("fmt", sorted(set(SUFFIX_FORMATS.values())))
def test_every_format_a_file_name_promises_is_recognised_from_the_bytes_pil_writes(fmt):
    data = _image_bytes(fmt)
    assert format_of(data[:16]) == fmt
    assert describe_bytes(data[:16]) == f"a {fmt} image"


@pytest.mark.parametrize("data, kind", [
    (gzip.compress(b"name,breed\n"), "a gzip archive"),
    (pickle.dumps({"weights": [1.0]}, protocol=4), "a pickle (torch.save)"),
    (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "a PDF document"),
])
def test_other_files_are_named_but_are_no_image_format(data, kind):
    assert describe_bytes(data) == kind and format_of(data) is None


def test_a_zip_is_named_and_text_is_not():
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("labels.csv", "name,breed\n")
    assert describe_bytes(out.getvalue()) == "a zip archive"
    assert describe_bytes(b"name,breed\npug_1.jpg,pug\n") is None and format_of(b"") is None


def test_one_table_serves_both_questions():
    for signature, (fmt, kind) in SIGNATURES.items():
        assert format_of(signature + b"\0" * 8) == fmt and describe_bytes(signature) == kind


def test_a_jpeg_cut_short_has_no_end_marker():
    data = _image_bytes("JPEG")
    assert has_jpeg_end(data) and has_jpeg_end(data + b"\0" * 100)  # some cameras append a few bytes
    assert not has_jpeg_end(data[:-2]) and not has_jpeg_end(data[: len(data) // 2])
    assert not has_jpeg_end(data + b"\0" * 5000)  # the marker is looked for in the last 4 KiB only
