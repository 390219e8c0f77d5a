import warnings

from engine.data import DataLoaders
from engine.data.summary import summary


def test_summary_of_a_working_pipeline(synthetic_pets):
    dls = DataLoaders.from_name_regex(synthetic_pets / "images", presize=64, size=32, device="cpu")
    lines = []
    rep = summary(dls, n=3, show=lines.append)
    assert rep.ok and rep.failed_step is None
    names = [s.name for s in rep.steps]
    assert names == ["open image", "presize (crop 64)", "to tensor", "collate", "to device (cpu)",
                     "augment (1 grid_sample)"]
    collate = rep.steps[3]
    assert collate.output == "(Tensor(3, 3, 64, 64) uint8 on cpu, Tensor(3,) int64 on cpu)"
    assert rep.steps[-1].output == "Tensor(3, 3, 32, 32) float32 on cpu"
    assert lines == rep.lines and lines[-1].startswith("OK: all 6 steps worked")


def test_summary_names_the_failing_collate_step(synthetic_pets):
    dls = DataLoaders.from_name_regex(synthetic_pets / "images", presize=None, device="cpu")
    rep = summary(dls, n=4, show=None)
    assert not rep.ok
    assert rep.failed_step == "collate"
    assert "different sizes" in rep.error and "CollateError" in rep.error
    assert "resize" in rep.hint
    assert len(rep.files) == 4 and all("Tensor(3, " in f for f in rep.files)  # each file with its shape
    assert "Step 'collate' failed on" in rep.text and "hint:" in rep.text


def test_summary_names_a_bad_file(tmp_path, synthetic_pets):
    dls = DataLoaders.from_name_regex(synthetic_pets / "images", presize=64, size=32, device="cpu")
    victim = dls.train.dataset.items[0]
    broken = tmp_path / victim.name
    broken.write_text("not an image")
    dls.train.dataset.items[0] = broken
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rep = summary(dls, n=2, show=None)
    assert rep.failed_step == "open image"
    assert rep.files == [victim.name]
    assert "verify_images" in rep.hint
