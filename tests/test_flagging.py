""""Wrong breed?" flagging (``demo/flagging.py``): the store's bounds, and the real server under raw payloads."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from demo.checks import InputRefused
from demo.flagging import Flags, encode_photo, shrink
from demo.predict_tab import Verdict
from tests.support.server import DemoServer, RawClient

VOCAB = ["Bengal", "pug", "beagle"]
PHOTO = Path(__file__).resolve().parents[1] / "demo" / "examples" / "pug_140.jpg"


def _verdict(kind="breed", photo=True):
    image = np.random.default_rng(0).integers(0, 255, (1200, 900, 3), np.uint8) if photo else None
    return Verdict(kind, "msg", label="pug", probabilities={"Bengal": 0.1, "pug": 0.8, "beagle": 0.1}, photo=image)


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_a_flag_is_one_json_and_one_bounded_jpeg(tmp_path):
    flags = Flags(tmp_path / "flags", VOCAB, max_bytes=100_000)
    flags.remember("s1", _verdict())
    assert "you say **Beagle (dog)**" in flags.flag("s1", "1.2.3.4", "beagle")
    names = _files(tmp_path / "flags")
    assert len(names) == 2 and names[0].endswith(".jpg") and names[1].endswith(".json")
    record = json.loads((tmp_path / "flags" / names[1]).read_text())
    assert record["correction"] == "beagle" and record["photo"] == names[0] and record["time"].endswith("Z")
    assert record["answer"] == {"breed": "pug", "verdict": "breed", "model": "the shipped model",
                                "probabilities": {"Bengal": 0.1, "pug": 0.8, "beagle": 0.1}}
    photo = tmp_path / "flags" / names[0]
    assert photo.stat().st_size <= 100_000  # random noise: the hardest photo to compress
    with Image.open(photo) as img:
        assert img.format == "JPEG" and max(img.size) <= 800 and img.size[0] < img.size[1]


def test_corrections_answers_rate_and_count_are_bounded(tmp_path):
    flags = Flags(tmp_path, VOCAB, max_flags=3, per_minute=2)
    for bad in ("Maine_Coon", "x" * 100_000, "../etc/passwd", None, 3, ["pug"], {"path": "/etc/passwd"}):
        flags.remember("s1", _verdict())
        with pytest.raises(InputRefused, match="Choose the right breed"):
            flags.flag("s1", "v1", bad)
    with pytest.raises(InputRefused, match="no answer to report"):
        flags.flag("s2", "v1", "pug")  # a session that never predicted
    flags.remember("s1", _verdict(kind="refused", photo=False))  # a refused file forgets the earlier photo
    with pytest.raises(InputRefused, match="no answer to report"):
        flags.flag("s1", "v1", "pug")
    flags.remember("s1", _verdict())
    assert "you confirm" in flags.flag("s1", "v1", "pug")
    with pytest.raises(InputRefused, match="no answer to report"):
        flags.flag("s1", "v1", "beagle")  # one flag per answer
    flags.remember("s1", _verdict())
    flags.flag("s1", "v1", "beagle")
    flags.remember("s1", _verdict())
    with pytest.raises(InputRefused, match="2 reports in the last minute"):
        flags.flag("s1", "v1", "beagle")
    flags.flag("s1", "v2", "beagle")  # another visitor: 3 flags, the most
    flags.remember("s3", _verdict())
    with pytest.raises(InputRefused, match="stored 3 reports"):
        flags.flag("s3", "v3", "beagle")
    assert flags.count() == 3 and len(_files(tmp_path)) == 6  # nothing deleted, no temporary file left


def test_photos_are_reencoded_within_the_limits():
    data = encode_photo(np.full((3000, 1000, 3), 128, np.uint8), max_side=500, max_bytes=20_000)
    with Image.open(io.BytesIO(data)) as img:
        assert img.size == (167, 500)


@pytest.mark.parametrize("shape", [(1800, 2400), (1000, 750), (3000, 1000), (801, 600), (500, 400)])
def test_the_kept_photo_is_the_photo_shrunk_as_a_thumbnail_would_be(shape):
    # a smooth picture with detail at every scale, shrunk by shrink (OpenCV) and by PIL's thumbnail
    y, x = np.mgrid[:shape[0], :shape[1]].astype(np.float32)
    photo = np.stack([127 + 120 * np.sin(x / 37) * np.cos(y / 23), 255 * x / shape[1], 255 * y / shape[0]], -1)
    photo = photo.astype(np.uint8)
    small = shrink(photo, 800)
    want = Image.fromarray(photo)
    want.thumbnail((800, 800), reducing_gap=2.0)
    assert small.shape[1::-1] == want.size and small.dtype == np.uint8
    assert np.abs(small.astype(int) - np.asarray(want).astype(int)).mean() < 2


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("flagging")
    env = {"GRADIO_TEMP_DIR": str(tmp_path_factory.mktemp("gradio"))}
    with DemoServer(["--flag-dir", str(root / "flags"), "--flag-max", "3"], env=env) as running:
        running.root = root
        yield running


def _said(client: RawClient, fn: int, data: list) -> str:
    output, error, _ = client.call(fn, data)
    return output[0] if output is not None else f"ERROR {error}"


def test_flags_through_the_real_server_with_hostile_payloads(server, tmp_path):
    folder = server.root / "flags"
    page = RawClient(server.url, source="127.0.0.2")
    flag, predict = page.fn_index("flag_wrong_breed"), page.fn_index("predict")
    example = page.fn_index("predict_example")
    assert "no answer to report" in _said(page, flag, ["beagle"])  # no prediction yet
    photo = page.upload(PHOTO)
    top5, _, _, _, _ = page.call(predict, [photo, False])[0]
    assert top5["label"] == "Pug (dog)"  # the page shows names; the flag stores the id
    # hostile corrections: not a breed, huge, a path, a file, not a string
    for bad in ("Maine Coon", "x" * 60_000, "../../etc/passwd", 7, None, ["beagle"], photo):
        assert "Choose the right breed" in _said(page, flag, [bad]), str(bad)[:40]
    for bad in ("x" * 70_000, {"path": "/etc/passwd", "meta": {"_type": "gradio.FileData"}}):
        assert _said(page, flag, [bad]).startswith("ERROR")  # refused at the door: too big, a file outside uploads
    # an invented session id, and this page's session id sent from another address, find no answer
    assert "no answer to report" in _said(RawClient(server.url, session="invented", source="127.0.0.2"), flag,
                                          ["beagle"])
    assert "no answer to report" in _said(RawClient(server.url, session=page.session, source="127.0.0.3"), flag,
                                          ["beagle"])
    assert not folder.exists() or _files(folder) == []
    assert "you say **Beagle (dog)**" in _said(page, flag, ["beagle"])
    assert "no answer to report" in _said(page, flag, ["beagle"])  # one flag per answer
    jpg, meta = _files(folder)
    record = json.loads((folder / meta).read_text())
    assert record["correction"] == "beagle" and record["answer"]["breed"] == "pug"
    assert len(record["answer"]["probabilities"]) == 37
    with Image.open(folder / jpg) as stored, Image.open(PHOTO) as original:  # the photo that was predicted
        a = np.asarray(stored.convert("RGB").resize((64, 64)), np.float32)
        b = np.asarray(original.convert("RGB").resize((64, 64)), np.float32)
        assert np.abs(a - b).mean() < 8
    # flooding past --flag-max 3: examples need no upload; the 4th is refused and nothing is deleted
    for i in range(4):
        page.call(example, [False, None], {"index": i % 2, "value": None})
        said = _said(page, flag, ["Bengal"])
        assert ("Thank you" in said or "you confirm" in said) if i < 2 else "stored 3 reports" in said, said
    assert len(_files(folder)) == 6 and not any(n.endswith(".tmp") for n in _files(folder))
    assert _files(server.root) == ["flags"]  # nothing written beside the folder
    assert server.process.poll() is None


def test_the_command_line_refuses_a_flag_folder_it_cannot_make_and_a_bad_bound(tmp_path, capsys):
    from demo.__main__ import main

    (tmp_path / "a-file").write_text("")
    assert main(["--flag-dir", str(tmp_path / "a-file" / "flags")]) == 2
    assert "--flag-dir" in capsys.readouterr().err
    assert main(["--flag-dir", str(tmp_path / "flags"), "--flag-max", "0"]) == 2
    assert "--flag-max must be at least 1" in capsys.readouterr().err


def test_in_a_browser_about_shows_the_card_and_a_wrong_breed_is_reported(tmp_path, pets_sample):
    chromium = Path("/usr/bin/chromium")
    if not chromium.exists():
        if os.environ.get("REQUIRE_PETS_SAMPLE") == "1":
            pytest.fail(f"REQUIRE_PETS_SAMPLE=1 but {chromium} is missing: install Debian's chromium")
        pytest.skip(f"{chromium} is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    folder = tmp_path / "flags"
    with DemoServer(["--flag-dir", str(folder)], env={"GRADIO_TEMP_DIR": str(tmp_path / "gradio")}) as server, \
            sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(chromium), headless=True,
                                    args=["--no-sandbox", "--disable-gpu", "--no-first-run"])
        try:
            page = browser.new_page()
            page.set_default_timeout(60_000)
            page.goto(server.url)
            page.get_by_role("tab", name="About").click()
            assert "37 breeds: 12 cats and 25 dogs" in page.locator("#model-card").inner_text()
            page.get_by_role("tab", name="Which breed is my pet?").click()
            page.locator("#photo-upload input[type=file]").set_input_files(str(pets_sample / "images" /
                                                                                "keeshond_119.jpg"))
            page.wait_for_function("document.querySelector('#verdict').innerText.includes('ms with the shipped')")
            page.get_by_text("Wrong breed?").click()
            page.locator("#flag-breed input").fill("Samoyed")
            page.get_by_role("option", name="Samoyed (dog)").click()
            page.locator("#flag-send").click()
            page.wait_for_function("document.querySelector('#flag-said').innerText.includes('Thank you')")
        finally:
            browser.close()
    (record,) = [json.loads(p.read_text()) for p in folder.glob("*.json")]
    assert record["correction"] == "samoyed" and record["answer"]["breed"] == "keeshond"


def test_a_flag_that_cannot_be_written_leaves_nothing_half_done(tmp_path, monkeypatch):
    import demo.flagging as flagging

    flags = Flags(tmp_path, VOCAB)
    flags.remember("s1", _verdict())
    real = flagging._write_atomically

    def json_fails(path, data):
        if path.suffix == ".json":
            raise OSError(28, "No space left on device")
        real(path, data)

    monkeypatch.setattr(flagging, "_write_atomically", json_fails)
    with pytest.raises(InputRefused, match="could not store your report"):
        flags.flag("s1", "v1", "beagle")
    assert _files(tmp_path) == []
    monkeypatch.setattr(flagging, "_write_atomically", real)
    flags.flag("s1", "v1", "beagle")  # the answer is kept: the visitor can try again
    assert flags.count() == 1
