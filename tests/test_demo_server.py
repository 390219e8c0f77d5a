"""The real server: ``python -m demo`` in a child process, called over HTTP with gradio_client and
with raw payloads (``tests.support.server.RawClient``: any event by its ``fn_index``, any JSON), as an
attacker on a classroom network would.

One server for most of the module (starting it takes a few seconds); the tests that need other
options (tiny training data, a login, a short cache life) start their own.
"""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.request
from pathlib import Path

import gradio_client  # noqa: E402  (a test dependency: missing, the suite fails rather than skips)
import numpy as np
import pytest
from PIL import Image

from demo.predict_tab import BUSY_VISITOR
from engine.data.breeds import display_name
from engine.testing import write_image, write_labels_csv, write_synthetic_pets
from tests.support.server import DemoServer, RawClient

MB = 2**20


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    # Its own upload folder, so that what the tests leave there cannot meet another server's files;
    # and a machine without a C++ compiler: PATH is an empty folder, CC and CXX are unset.
    no_compilers = tmp_path_factory.mktemp("no-compilers")
    env = {"GRADIO_TEMP_DIR": str(tmp_path_factory.mktemp("gradio")), "PATH": str(no_compilers),
           "CC": None, "CXX": None}
    started = time.monotonic()
    with DemoServer(env=env) as running:
        running.no_compilers, running.started = no_compilers, started
        yield running


@pytest.fixture(scope="module")
def client(server):
    return gradio_client.Client(server.url, verbose=False)


def _predict(client, path):
    """(top 5, message, preview); the fourth output, the preview with the map over it, is tested apart."""
    return client.predict(gradio_client.handle_file(str(path)), False, api_name="/predict")[:3]


PHOTO = Path(__file__).resolve().parents[1] / "demo" / "examples" / "pug_140.jpg"  # shipped with the demo


def _assert_answers(client, server):
    """The server is alive and still predicts a photo (after whatever the test sent it)."""
    assert server.process.poll() is None, server.output()
    top5, message, _ = _predict(client, PHOTO)
    assert top5["label"] == "Pug (dog)" and "ms with the shipped model" in message


@pytest.mark.parametrize("name,breed", [("keeshond_119.jpg", "keeshond"), ("Bengal_169.jpg", "Bengal")])
def test_predicts_the_breed_of_a_real_photo(client, pets_sample, name, breed):
    top5, message, preview = _predict(client, pets_sample / "images" / name)
    assert top5["label"] == display_name(breed)  # the page's names: "Bengal (cat)"
    assert top5["confidences"][0]["label"] == display_name(breed) and len(top5["confidences"]) == 5
    assert message.startswith(f"### {display_name(breed)}\n") and "ms with the shipped model" in message
    with Image.open(preview) as seen:  # the square the model looked at, served back as an image
        assert seen.size == (224, 224)


def test_a_pet_imagenet_does_not_see_gets_both_opinions_and_a_non_pet_is_refused(client, pets_sample, tmp_path):
    # the breed model is sure of this boxer; ImageNet sees only its tennis ball (Prediction.verdict: "disagree")
    top5, message, _ = _predict(client, pets_sample / "images" / "boxer_157.jpg")
    assert message.startswith("### Looks like a Boxer (dog) at 100%, though a general-purpose classifier sees a "
                              "tennis ball\n"), message
    assert len(top5["confidences"]) == 5  # the breeds are shown
    from skimage.data import coffee  # a real photograph of no cat or dog (scikit-image: a test dependency)

    Image.fromarray(coffee()).save(tmp_path / "coffee.jpg")
    top5, message, _ = _predict(client, tmp_path / "coffee.jpg")
    assert message.startswith("### This does not look like a cat or a dog\n") and "**espresso**" in message
    assert not top5  # no breeds shown


def _event(client, api_name: str, data: list, event_data=None):
    """Call an event by its API name over raw HTTP (as any script could): ``(output list, error)``."""
    raw = RawClient(client.src)
    try:
        output, error, _ = raw.call(raw.fn_index(api_name), data, event_data)
        return output, error
    finally:
        raw.close()


def test_example_thumbnails_are_picked_by_position_only(client):
    # a click sends the position of the thumbnail; the server reads only its own example photos
    output, error = _event(client, "predict_example", [False, None], {"index": 1, "value": None})
    assert error is None, error
    top5, message, _, looked, answer = output
    assert looked is not None and answer["label"] and answer["verdict"] in ("breed", "unsure", "disagree")
    assert message.startswith("### ") and "ms with the shipped model" in message and top5["label"]
    for index in (8, -1, 10**12, "0", 1.0, True, None, [0, 0], {"name": "x"}):
        (top5, message, preview, looked, answer), _ = _event(client, "predict_example", [False, None],
                                                             {"index": index, "value": None})
        assert not top5 and preview is None and looked is None and message.startswith("No photo yet"), index
        assert answer == {"verdict": "no_photo", "label": None, "name": None, "top5": [], "imagenet": None,
                          "pet_probability": None, "milliseconds": None}
    for event in ({"index": {"path": "/etc/passwd"}, "value": None}, {"path": "/etc/passwd"}, "junk"):
        output, error = _event(client, "predict_example", [False, None], event)  # refused before our handler
        assert output is None and "root:" not in str(error)


def test_the_answer_shows_where_the_model_looked(client):
    _, message, preview, looked, _ = client.predict(gradio_client.handle_file(str(PHOTO)), False, api_name="/predict")
    plain, laid = np.asarray(Image.open(preview)).astype(int), np.asarray(Image.open(looked)).astype(int)
    assert plain.shape == laid.shape == (224, 224, 3) and message.startswith("### ")
    warmer = (laid[..., 0] - plain[..., 0]) > 20  # the map is laid over part of the picture, not all of it
    assert 0.05 < warmer.mean() < 0.9


def test_the_api_gives_breed_ids_beside_the_pages_names(client, server, pets_sample, tmp_path):
    # Issue 23: names for people, ids for scripts: /predict's last output is the answer by breed id.
    from demo.settings import SHIPPED_MODEL

    vocab = json.loads((SHIPPED_MODEL / "meta.json").read_text())["vocab"]
    photo = gradio_client.handle_file(str(pets_sample / "images" / "keeshond_119.jpg"))
    top5, message, _, _, answer = client.predict(photo, False, api_name="/predict")
    assert answer["verdict"] == "breed" and answer["label"] == "keeshond" and answer["name"] == "Keeshond (dog)"
    ids = [t["id"] for t in answer["top5"]]
    assert ids[0] == "keeshond" and len(ids) == 5 and set(ids) <= set(vocab)
    assert [t["name"] for t in answer["top5"]] == [c["label"] for c in top5["confidences"]] \
        == [display_name(i) for i in ids]  # the same five as the page shows, in the same order
    np.testing.assert_allclose([t["probability"] for t in answer["top5"]],
                               [c["confidence"] for c in top5["confidences"]], atol=1e-4)
    assert answer["imagenet"][0]["name"] and 0.5 < answer["pet_probability"] <= 1 and answer["milliseconds"] > 0
    # a raw payload, as a script without gradio_client sends it: the queue, then the REST route of the API page
    raw = RawClient(server.url)
    output, error, _ = raw.call(raw.fn_index("predict"), [raw.upload(PHOTO), False])
    assert error is None and output[4]["label"] == "pug" and output[4]["top5"][0]["id"] == "pug"
    started = raw.http.post(server.url + "gradio_api/call/predict", json={"data": [raw.upload(PHOTO), False]})
    assert started.status_code == 200, started.text
    stream = raw.http.get(server.url + f"gradio_api/call/predict/{started.json()['event_id']}").text
    data = json.loads(stream.split("event: complete\ndata: ", 1)[1].splitlines()[0])
    assert data[4]["label"] == "pug" and data[0]["label"] == "Pug (dog)"
    # not a pet: the page shows no breeds, the API still says what the breed model would answer, and the verdict
    from skimage.data import coffee

    Image.fromarray(coffee()).save(tmp_path / "coffee.jpg")
    top5, _, _, _, answer = client.predict(gradio_client.handle_file(str(tmp_path / "coffee.jpg")), False,
                                           api_name="/predict")
    assert not top5 and answer["verdict"] == "not_a_pet" and answer["label"] in vocab and len(answer["top5"]) == 5
    assert answer["imagenet"][0]["name"] == "espresso" and answer["pet_probability"] < 0.1
    raw.close()


def test_upload_webcam_and_clipboard_are_one_input_with_the_same_checks(client, pets_sample, tmp_path):
    # One gr.Image for the three sources, whose event skips Gradio's decoding (preprocess=False): a
    # camera shot or a pasted picture is an upload like any other, and meets the same checks.
    photo_inputs = [c for c in client.config["components"] if c.get("props", {}).get("elem_id") == "photo-upload"]
    assert len(photo_inputs) == 1 and photo_inputs[0]["type"] == "image"
    assert photo_inputs[0]["props"]["sources"] == ["upload", "webcam", "clipboard"]
    photo = gradio_client.handle_file(str(pets_sample / "images" / "Bengal_169.jpg"))
    top5, message, _, _, _ = client.predict(photo, False, api_name="/predict")
    assert top5["label"] == "Bengal (cat)" and message.startswith("### Bengal (cat)\n")
    Image.new("L", (7000, 7000)).save(tmp_path / "paste.png", optimize=True)  # 49 megapixels
    _, message, _, _, answer = client.predict(gradio_client.handle_file(str(tmp_path / "paste.png")), False,
                                              api_name="/predict")
    assert answer["verdict"] == "refused" and answer["label"] is None and answer["top5"] == []
    assert ("is 7000x7000 = 49 megapixels; the demo refuses PNG images (JPEG photos up to 40) over 12 megapixels"
            in message)


def test_bad_files_get_a_clear_message_and_the_server_keeps_answering(client, server, tmp_path):
    (tmp_path / "notes.jpg").write_text("not a photo at all")
    Image.new("1", (14000, 14000)).save(tmp_path / "bomb.png", optimize=True)  # 196 megapixels, ~24 KB
    (tmp_path / "empty.jpg").write_bytes(b"")
    expected = {"notes.jpg": "not an image the demo can read", "bomb.png": "decompression bomb",
                "empty.jpg": "The file is empty (0 bytes)"}
    for name, text in expected.items():
        top5, message, preview = _predict(client, tmp_path / name)
        assert message.startswith("### Cannot use this file\n") and text in message, message
        assert preview is None
    _assert_answers(client, server)
    Image.new("RGB", (300, 200), (200, 120, 40)).save(tmp_path / "plain.png")
    assert "ms with the shipped model" in _predict(client, tmp_path / "plain.png")[1]


def test_uploads_over_the_size_limit_are_refused_by_the_server(server, client):
    body = b"x" * (10 * MB + 1024)
    boundary = "petbreedsboundary"
    payload = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"big.jpg\"\r\n"
               "Content-Type: image/jpeg\r\n\r\n").encode() + body + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(server.url + "gradio_api/upload", data=payload, method="POST",
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(request, timeout=30)
    assert err.value.code == 413
    assert "maximum allowed size of 10485760 bytes" in err.value.read().decode()
    _assert_answers(client, server)


def test_without_a_compiler_it_answers_on_onnxruntime_from_the_first_photo(server, client):
    import shutil

    assert all(shutil.which(cc, path=str(server.no_compilers)) is None for cc in ("c++", "g++", "gcc", "cc", "clang"))
    _assert_answers(client, server)
    print(f"started and answered in {time.monotonic() - server.started:.1f} s")  # bench/demo.py times it: startup_s
    said = server.output(last=None)
    # onnxruntime, or OpenVINO where the CPU has bf16 units and it was faster at load: a checked graph either way
    assert re.search(r"the model answers on (onnxruntime|openvino) ", said) and "checked against PyTorch" in said
    assert "compil" not in said.lower()


def test_launch_options_read_from_the_running_server(server):
    import psutil

    process = psutil.Process(server.pid)
    listening = {c.laddr for c in process.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN}
    assert listening == {("127.0.0.1", server.port)}  # this machine only, one socket
    assert not [p for p in process.children(recursive=True) if "node" in p.name()]  # no server-side rendering
    with urllib.request.urlopen(server.url + "config", timeout=10) as response:
        config = json.load(response)
    assert config["max_file_size"] == 10 * MB
    assert config["show_error"] is False and config["run_history"] is False
    assert config["analytics_enabled"] is False and config["mcp_server"] is False
    labels = {c["props"].get("label") for c in config["components"] if "props" in c}
    assert {"Your photo", "Top 5 breeds", "True class", "Presized on the CPU: 460x460"} <= labels


def test_only_prediction_and_training_are_api_endpoints(client, pets_sample):
    # PETS_SAMPLE is set (the fixture checked it), so this server has training data and its /train event
    endpoints = set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    assert endpoints == {"/predict", "/predict_example", "/train"}  # the labs are page-only


def test_a_fresh_machine_with_the_full_download_has_examples_and_training(full_pets_home, tmp_path):
    # PETS_SAMPLE unset, only the full download in the cache: the demo picks the sample out of it
    home = tmp_path / "home"
    home.mkdir()
    (home / "oxford-iiit-pet").symlink_to(full_pets_home / "oxford-iiit-pet")
    with DemoServer([], env={"PETS_SAMPLE": None, "PETBREEDS_HOME": str(home)}) as fresh:
        c = gradio_client.Client(fresh.url, verbose=False)
        endpoints = set(c.view_api(print_info=False, return_format="dict")["named_endpoints"])
        assert "/train" in endpoints and "/predict_example" in endpoints
        assert "Picked the 370-photo pet sample" in fresh.output()
        gallery = next(x for x in c.config["components"] if x.get("props", {}).get("elem_id") == "predict-examples")
        shown = [item["image"]["orig_name"] for item in gallery["props"]["value"]]
        assert len(shown) == 8 and shown[0][0].isupper() and shown[-1][0].islower()
        output, error = _event(c, "predict_example", [False, None], {"index": 0, "value": None})
        assert error is None and "ms with the shipped model" in output[1]


# --- attacks: files, inputs, load -----------------------------------------------------------------

def _file_events(raw):
    """Every event that takes a file: (name, fn_index, data for a given file payload)."""
    photo_events = [("predict", raw.fn_index("predict"))]  # upload, webcam and paste: one input, one event
    compare = raw.fn_index(first_input="Photo", trigger="click")
    return [(name, fn, lambda f: [f, False]) for name, fn in photo_events] + \
        [("presize lab", compare, lambda f: [f, 10, 1.1, 2, 0])]


def test_no_file_outside_the_upload_folder_reaches_a_handler(server, pets_sample, tmp_path):
    raw = RawClient(server.url)
    inside = raw.upload(PHOTO)
    secret = tmp_path / "secret.png"  # a real image on the server, outside the upload folder
    Image.new("RGB", (64, 64), (250, 10, 10)).save(secret)
    link = Path(inside["path"]).parent / f"link-{time.monotonic_ns()}.png"  # inside the upload folder, to outside
    link.symlink_to(secret)
    outside = [str(secret), "/etc/passwd", str(pets_sample / "images" / "pug_140.jpg"), str(tmp_path / "missing.png"),
               str(tmp_path), inside["path"] + "/../../../../etc/passwd", str(link), "/dev/zero", "/proc/self/environ"]
    for name, fn, data in _file_events(raw):
        answers = set()
        for path in outside:
            for payload in ({"path": path}, {"path": path, "meta": {"_type": "gradio.FileData"}}, path):
                output, error, _ = raw.call(fn, data(payload))
                if output is None:  # refused by Gradio itself (a FileData outside its cache)
                    assert "root:" not in str(error) and "secret" not in str(error), (name, path, error)
                    continue
                text = output[1] if name != "presize lab" else output[-1]
                images = [output[2]] if name != "presize lab" else [output[0], output[2], output[3], *output[1]]
                assert all(not i for i in images), (name, path, output)  # no preview of anything
                answers.add(text)
        # the same words for every path, there or not, image or not (or Gradio refused the payload itself)
        assert len(answers) <= 1 and all("did not arrive completely" in a for a in answers), (name, answers)
        output, _, _ = raw.call(fn, data(inside))  # a real upload still works
        assert "did not arrive" not in str(output)
    raw.close()


def _rss_mb(server) -> float:
    import psutil

    process = psutil.Process(server.pid)
    return sum(p.memory_info().rss for p in [process, *process.children(recursive=True)]) / 2**20


def test_every_event_checks_its_inputs(server, tiny_server):
    raw = RawClient(server.url)
    trainer = RawClient(tiny_server.url)  # training data of its own: the Train tab exists without PETS_SAMPLE
    photo = raw.upload(PHOTO)
    before = _rss_mb(server)
    nan, inf = float("nan"), float("inf")
    softmax = raw.fn_index(first_input="True class")
    log_fn, huge_fn = raw.fn_index(first_input="x for log(x)"), raw.fn_index(first_input="a huge logit")
    compare = raw.fn_index(first_input="Photo", trigger="click")
    compare_example = raw.fn_index(first_input="Rotation (degrees)", trigger="select")
    train = ("train", trainer.fn_index("train"))
    ok_softmax = ["beagle", 1.0, 1.0, -0.5, 3.0, 0.5, 2.0]
    cases = [
        (softmax, ["beagle", 1e6, *ok_softmax[2:]], "The temperature must be between 0.1 and 5"),
        (softmax, ["beagle", nan, *ok_softmax[2:]], "The temperature must be between 0.1 and 5"),
        (softmax, ["beagle", 1.0, "abc", *ok_softmax[3:]], "must be a number between -10 and 10, not str"),
        (softmax, ["beagle", 1.0, -1e308, *ok_softmax[3:]], "must be between -10 and 10"),
        (softmax, ["wolf", *ok_softmax[1:]], "The true class must be one of"),
        (log_fn, ["abc"], "x must be a number"),
        (log_fn, [inf], "x must be between"),
        (huge_fn, [inf], "Type a finite number"),
        (huge_fn, [[1, 2]], "Type a finite number"),
        (compare, [photo, 10, 1.1, 10**6, 0], "The number of augmented views must be between 1 and 12"),
        (compare, [photo, 10, 1.1, 40, 0], "between 1 and 12"),
        (compare, [photo, 10, 1.1, -5, 0], "between 1 and 12"),
        (compare, [photo, 10, 1.1, "6", 0], "must be a number between 1 and 12, not str"),
        (compare, [photo, 10, 1.1, 2.5, 0], "must be a whole number"),
        (compare, [photo, 1e9, 1.1, 2, 0], "The rotation must be between 0 and 45"),
        (compare, [photo, 10, 0.5, 2, 0], "The zoom must be between 1 and 2"),
        (compare, [photo, 10, nan, 2, 0], "The zoom must be between 1 and 2"),
        (compare, [photo, 10, 1.1, 2, -1], "The random seed must be between 0 and"),
        (compare, [photo, 10, 1.1, 2, 2**40], "The random seed must be between 0 and"),
        (train, [99, 8, True, 0.002, False], "The number of unfrozen epochs must be between 0 and 3"),
        (train, [0, 10**6, True, 0.002, False], "The number of head-only epochs must be between 1 and 32"),
        (train, [0, 0, True, 0.002, False], "between 1 and 32"),
        (train, [0, 8, True, 5.0, False], "The base LR must be between 1e-06 and 1"),
        (train, [0, 8, True, nan, False], "The base LR must be between"),
        (train, [0, 8, "yes", 0.002, False], "must be ticked or not"),
        (train, [0, 8, True, 0.002, 1], "must be ticked or not"),
        (raw.fn_index("predict"), [photo, "yes"], "must be ticked or not"),
    ]
    for fn, data, expected in cases:
        client, fn = (trainer, fn[1]) if isinstance(fn, tuple) else (raw, fn)
        output, error, _ = client.call(fn, data)
        assert error is None and output is not None, (data, error)  # our handler answered, with a message
        shown = " ".join(str(o) for o in output if isinstance(o, str))
        assert expected in shown, (data, shown[:300])
    output, error, _ = raw.call(compare_example, [10, 1.1, 10**6, 0], {"index": 0, "value": None})
    assert "between 1 and 12" in output[-1]
    rows, text, _ = raw.call(softmax, ok_softmax)[0]  # and values the page can send still work
    assert len(rows["data"]) == 5 and "cross-entropy" in text
    assert "math.log(-2)" in raw.call(log_fn, [-2])[0][0]
    assert _rss_mb(server) - before < 200  # nothing huge was even tried
    _assert_answers(gradio_client.Client(server.url, verbose=False), server)
    raw.close()
    trainer.close()


def test_result_files_are_unique_and_complete_under_concurrent_reads(server):
    # Identical previews used to share one cache file, rewritten while others downloaded it.
    raw = RawClient(server.url)
    photo = raw.upload(PHOTO)
    fn = raw.fn_index("predict")
    urls, errors = [], []

    def visitor(i):
        me = RawClient(server.url, source=f"127.0.3.{i + 1}")  # 4 visitors (one visitor runs 2 at most)
        try:
            for _ in range(4):
                output, error, _ = me.call(fn, [photo, False])
                urls.append(output[2]["url"])
                Image.open(__import__("io").BytesIO(me.fetch(output[2]))).load()  # complete and decodable
        except Exception as err:  # noqa: BLE001 (collected, then asserted)
            errors.append(repr(err))
        finally:
            me.close()

    threads = [threading.Thread(target=visitor, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(urls) == 16 and len(set(urls)) == 16  # same photo, 16 different files
    raw.close()


# --- training: admission and sessions -------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_server(tmp_path_factory):
    """A server whose training data is 4 breeds x 6 small generated photos: a training takes seconds."""
    folder = tmp_path_factory.mktemp("tiny_train")
    paths = write_synthetic_pets(folder / "images", breeds=["pug", "beagle", "Bengal", "boxer"], n_per_breed=6,
                                 size=(96, 80), seed=3)
    table = write_labels_csv(folder, paths, valid_per_breed=2)
    with DemoServer(["--train-data", str(table)]) as running:
        yield running


TRAIN = [0, 2, True, 0.002, False]  # no unfrozen epoch, 2 head-only epochs, the LR finder's suggestion


def test_twenty_trainings_admit_two_and_photos_keep_flowing(tiny_server):
    raw = RawClient(tiny_server.url)
    photo, train, predict = raw.upload(PHOTO), raw.fn_index("train"), raw.fn_index("predict")
    events, lock, stop = [], threading.Lock(), threading.Event()

    def note(*what):
        with lock:
            events.append((time.monotonic(), *what))

    def predicting():
        me = RawClient(tiny_server.url)
        while not stop.is_set():
            output, error, _ = me.call(predict, [photo, False])
            note("prediction", output is not None and "ms with the shipped model" in output[1], error)
        me.close()

    def training(i):
        me = RawClient(tiny_server.url, session=f"visitor-{i}", source=f"127.0.1.{i + 1}")  # 20 visitors
        output, error, messages = me.call(train, TRAIN)
        note("training", i, [v for v in RawClient.values(messages) if isinstance(v, str)], error)
        me.close()

    predictor = threading.Thread(target=predicting)
    predictor.start()
    trainers = [threading.Thread(target=training, args=(i,)) for i in range(20)]
    for t in trainers:
        t.start()
    for t in trainers:
        t.join()
    stop.set()
    predictor.join()
    trainings = [e for e in events if e[1] == "training"]
    admitted = [e for e in trainings if any("Done in" in s for s in e[3])]
    busy = [e for e in trainings if e[3] and e[3][-1].startswith("Training is busy")]
    assert len(trainings) == 20 and len(admitted) == 2 and len(busy) == 18, [e[3][-1][:80] for e in trainings]
    assert "Try again in about" in busy[0][3][-1]
    assert any(s.startswith("Waiting for the training before yours") for e in admitted for s in e[3])
    predictions = [e for e in events if e[1] == "prediction"]
    assert predictions and all(ok for _, _, ok, _ in predictions), [e for e in predictions if not e[2]][:3]
    # a prediction finished while a training was still running: between the first training's
    # first progress message and its end (order of events, not a duration)
    first_end = min(e[0] for e in admitted)
    assert any(t < first_end for t, *_ in predictions[1:])
    assert _rss_mb(tiny_server) < 3000
    raw.close()


def test_a_visitor_gets_one_training_at_a_time(tiny_server):
    page = RawClient(tiny_server.url)  # one page, one result stream, two clicks on "train"
    train = page.fn_index("train")
    first, second = page.join(train, TRAIN), page.join(train, TRAIN)
    answers = sorted(out[0][0] if out[0] else str(out[1]) for out in page.results([first, second]).values())
    assert answers[0].startswith("1. Data:") and "Done in" in answers[0], answers
    assert answers[1].startswith("You already have a training that is running (one per visitor)"), answers
    page.close()


def test_a_trained_model_belongs_to_its_session_only(tiny_server):
    mine, other = RawClient(tiny_server.url, session="mine"), RawClient(tiny_server.url, session="other")
    output, error, _ = mine.call(mine.fn_index("train"), TRAIN)
    assert error is None and "Done in" in output[0], output
    photo = mine.upload(PHOTO)
    predict = mine.fn_index("predict")
    assert "with your model from tab 4" in mine.call(predict, [photo, True])[0][1]
    assert "with the shipped model" in mine.call(predict, [photo, False])[0][1]
    answer = other.call(predict, [photo, True])[0][1]
    assert "You have not trained a model in this session yet" in answer and "with the shipped model" in answer
    mine.close()
    other.close()


# --- options: cache life, login -------------------------------------------------------------------

def test_uploads_and_results_are_deleted_after_their_time(tmp_path):
    temp = tmp_path / "gradio"
    with DemoServer(["--delete-after", "2"], env={"GRADIO_TEMP_DIR": str(temp)}) as short:
        raw = RawClient(short.url)
        # not an example photo: Gradio stores an upload by its content, and the examples' own files stay
        photo = raw.upload(write_image(tmp_path / "visitor.jpg", size=(300, 240), seed=11))
        output, _, _ = raw.call(raw.fn_index("predict"), [photo, False])
        files = [Path(photo["path"]), Path(output[2]["path"])]
        assert all(f.is_file() and f.is_relative_to(temp) for f in files)
        deadline = time.monotonic() + 90  # deleted after 2 s, checked every 2 s: generous for a busy machine
        while time.monotonic() < deadline and any(f.exists() for f in files):
            time.sleep(0.5)
        assert not any(f.exists() for f in files), files
        assert "ms with the shipped model" in raw.call(raw.fn_index("predict"), [raw.upload(PHOTO), False])[0][1]
        raw.close()


def test_a_login_keeps_everyone_else_out(tmp_path):
    with DemoServer(["--auth", "teacher:s3cr:et"]) as locked:
        stranger = RawClient(locked.url)
        assert stranger.http.get(locked.url + "config").status_code == 401
        assert stranger.login("teacher", "wrong") == 400
        assert stranger.http.post(locked.url + "gradio_api/queue/join",
                                  json={"data": [], "fn_index": 0, "session_hash": "x"}).status_code == 401
        teacher = RawClient(locked.url)
        assert teacher.login("teacher", "s3cr:et") == 200  # the password may hold a colon
        output, error, _ = teacher.call(teacher.fn_index("predict"), [teacher.upload(PHOTO), False])
        assert error is None and "ms with the shipped model" in output[1]
        # the front door describes the events' inputs (and names) only to those who signed in
        wrong_type = {"data": [5, False], "fn_index": teacher.fn_index("predict"), "session_hash": "x"}
        for who, code in ((stranger, 401), (teacher, 422)):
            answer = who.http.post(locked.url + "gradio_api/queue/join", json=wrong_type)
            assert answer.status_code == code and ("Your photo" in answer.text) == (code == 422), answer.text
            answer = who.http.post(locked.url + "gradio_api/run/nothing", json={"data": []})
            assert answer.status_code == code and ("nothing" in answer.text) == (code == 422), answer.text
        assert "Traceback" not in locked.output(last=None)
        stranger.close()
        teacher.close()


# --- a hostile visitor (issue: a classroom server that survives one) --------------------------------

def _sample_rss(server, peak: list, stop: threading.Event) -> None:
    while not stop.is_set():
        peak.append(_rss_mb(server))
        time.sleep(0.05)


def test_a_folder_payload_cannot_stop_the_deletion_of_uploads(tmp_path):
    temp = tmp_path / "gradio"
    with DemoServer(["--delete-after", "2"], env={"GRADIO_TEMP_DIR": str(temp)}) as short:
        raw = RawClient(short.url)
        first = raw.upload(write_image(tmp_path / "first.jpg", size=(300, 240), seed=21))
        folder = str(Path(first["path"]).parent)  # any visitor knows this folder: their upload's parent
        predict = raw.fn_index("predict")
        for payload in ({"path": folder, "meta": {"_type": "gradio.FileData"}}, {"path": folder},
                        {"path": folder + "/", "url": "http://127.0.0.1:9/x.jpg"}):
            output, error, _ = raw.call(predict, [payload, False])
            assert output is None and error.startswith("HTTP 422") and "not a photo uploaded" in error, error
        time.sleep(3)  # the folder is now older than --delete-after: Gradio's sweep used to die on it here
        later = raw.upload(write_image(tmp_path / "later.jpg", size=(320, 200), seed=22))
        output, _, _ = raw.call(predict, [later, False])
        files = [Path(first["path"]), Path(later["path"]), Path(output[2]["path"])]
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and any(f.exists() for f in files):
            time.sleep(0.5)
        assert not any(f.exists() for f in files), files  # still deleted, after the payload
        assert "ms with the shipped model" in raw.call(predict, [raw.upload(PHOTO), False])[0][1]
        raw.close()


def test_large_bodies_are_refused_and_nothing_is_kept(server):
    raw = RawClient(server.url, source="127.0.4.1")
    before = _rss_mb(server)
    big = json.dumps({"data": ["x" * (20 * MB)], "fn_index": 0, "session_hash": "big"}).encode()
    for _ in range(5):
        answer = raw.http.post(server.url + "gradio_api/queue/join", content=big,
                               headers={"Content-Type": "application/json"})
        assert answer.status_code == 413 and "64 KB" in answer.json()["detail"]

    def chunks():  # no Content-Length: the body is cut off as it streams in
        for _ in range(40):
            yield b"x" * 65536

    answer = raw.http.post(server.url + "gradio_api/queue/join", content=chunks(),
                           headers={"Content-Type": "application/json"})
    assert answer.status_code == 413
    assert _rss_mb(server) - before < 200
    _assert_answers(gradio_client.Client(server.url, verbose=False), server)
    raw.close()


def test_eighty_joins_of_a_big_image_cannot_starve_another_visitor(server, tmp_path):
    attacker, victim = RawClient(server.url, source="127.0.4.2"), RawClient(server.url)
    big = tmp_path / "big.png"  # 12 megapixels, the most a PNG may have: about 140 MB to decode
    Image.new("RGB", (4000, 3000), (90, 120, 60)).save(big)
    heavy, photo = attacker.upload(big), victim.upload(PHOTO)
    predict = attacker.fn_index("predict")
    statuses, admitted, lock = [], [], threading.Lock()
    peak, stop = [], threading.Event()
    sampler = threading.Thread(target=_sample_rss, args=(server, peak, stop))
    sampler.start()
    before = _rss_mb(server)

    def flood(n):
        me = RawClient(server.url, session=attacker.session, source="127.0.4.2")
        for _ in range(n):
            body = {"data": [heavy, False], "fn_index": predict, "session_hash": attacker.session}
            answer = me.http.post(server.url + "gradio_api/queue/join", json=body)
            with lock:
                statuses.append(answer.status_code)
                if answer.status_code == 200:
                    admitted.append(answer.json()["event_id"])
        me.close()

    floods = [threading.Thread(target=flood, args=(10,)) for _ in range(8)]
    for t in floods:
        t.start()
    for t in floods:
        t.join()
    mine = victim.join(predict, [photo, False])  # after all 80 joins: the attacker's events are ahead of it
    done = {}

    def read(client, events, name):
        for event, (output, error, _) in client.results(events).items():
            done[event] = (time.monotonic(), name, output, error)

    readers = [threading.Thread(target=read, args=(attacker, list(admitted), "attacker")),
               threading.Thread(target=read, args=(victim, [mine], "victim"))]
    for t in readers:
        t.start()
    for t in readers:
        t.join()
    stop.set()
    sampler.join()
    assert statuses.count(429) > 0 and statuses.count(200) == len(admitted), statuses  # the door refused some
    when, _, output, error = done[mine]
    assert error is None and "ms with the shipped model" in output[1], (output, error)
    heavy_done = [t for t, name, out, _ in done.values() if name == "attacker" and out and "### " in (out[1] or "")
                  and "Cannot use" not in out[1]]
    assert heavy_done and when < max(heavy_done), "the victim waited for every one of the attacker's decodes"
    busy = [out for _, name, out, _ in done.values() if name == "attacker" and out and out[1] == BUSY_VISITOR]
    assert len(busy) + len(heavy_done) == len(admitted) and len(busy) > len(heavy_done)  # most refused at once
    assert max(peak) - before < 500, (before, max(peak))  # big decodes one at a time, not a dozen at once
    attacker.close()
    victim.close()


def test_invented_session_ids_get_one_training_and_no_one_elses_model(tiny_server):
    train, outcomes = RawClient(tiny_server.url).fn_index("train"), []

    def training(i):  # one script, twenty invented session ids
        me = RawClient(tiny_server.url, session=f"invented-{i}", source="127.0.4.3")
        output, error, messages = me.call(train, TRAIN)
        outcomes.append([v for v in RawClient.values(messages) if isinstance(v, str)][-1:] or [str(error)])
        me.close()

    threads = [threading.Thread(target=training, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done = [o for o in outcomes if "Done in" in o[0]]
    refused = [o for o in outcomes if "one per visitor" in o[0] or "HTTP 429" in o[0]]  # by the handler or the door
    assert len(done) == 1 and len(refused) == 19, outcomes
    # Someone else, at another address, who sends the same session id, does not get that model:
    thief = RawClient(tiny_server.url, source="127.0.4.4")
    predict = thief.fn_index("predict")
    for i in range(20):
        thief.session = f"invented-{i}"
        answer = thief.call(predict, [thief.upload(PHOTO), True])[0][1]
        assert "You have not trained a model in this session yet" in answer, answer
    thief.close()


def test_uploads_have_a_quota_per_visitor(server, tmp_path):
    counting = RawClient(server.url, source="127.0.4.5")
    for _ in range(30):
        counting.upload(PHOTO)
    refused = counting.http.post(server.url + "gradio_api/upload", files={"files": ("pug.jpg", PHOTO.read_bytes())})
    assert refused.status_code == 429 and "Too many uploads" in refused.json()["detail"]
    assert int(refused.headers["retry-after"]) >= 1
    heavy = RawClient(server.url, source="127.0.4.6")
    blob = tmp_path / "blob.jpg"
    blob.write_bytes(PHOTO.read_bytes() + b"\0" * (9 * MB))  # 9 MB each: the 7th passes 60 MB a minute
    codes = [heavy.http.post(server.url + "gradio_api/upload", files={"files": ("b.jpg", blob.read_bytes())})
             .status_code for _ in range(7)]
    assert codes == [200] * 6 + [429], codes
    other = RawClient(server.url, source="127.0.4.7")  # another visitor is not affected
    assert other.upload(PHOTO)["path"]
    for c in (counting, heavy, other):
        c.close()


def test_odd_requests_get_a_message_not_a_server_error(server):
    raw = RawClient(server.url, source="127.0.4.8")
    join = server.url + "gradio_api/queue/join"
    for index in (10**9, -1, "0", True, 1.5):
        answer = raw.http.post(join, json={"data": [], "fn_index": index, "session_hash": raw.session})
        assert answer.status_code == 422 and "fn_index must name one of this app's events" in answer.text, answer.text
    browser_only = [i for i, d in enumerate(raw.config["dependencies"]) if not d.get("backend_fn", True)]
    assert browser_only  # the JavaScript hooks (the verdict scrolled into view): Gradio would log a traceback
    for index in browser_only:
        answer = raw.http.post(join, json={"data": [], "fn_index": index, "session_hash": raw.session})
        assert answer.status_code == 422 and "runs in the browser only" in answer.text, answer.text
    answer = raw.http.post(join, content=b"[" * 100_000 + b"]" * 100_000, headers={"Content-Type": "application/json"})
    assert answer.status_code == 413  # too large anyway; a deeply nested small one:
    answer = raw.http.post(join, content=b"[" * 30_000 + b"]" * 30_000, headers={"Content-Type": "application/json"})
    assert answer.status_code == 422
    example = raw.fn_index("predict_example")  # a click on a thumbnail: which one must be said
    tracebacks = server.output(last=None).count("Traceback")
    for event_data in (None, {}, {"value": 0}, "0", [0]):
        answer = raw.http.post(join, json={"data": [False], "fn_index": example, "session_hash": raw.session,
                                           "event_data": event_data})
        assert answer.status_code == 422 and "which one" in answer.text, (event_data, answer.text)
    output, error, _ = raw.call(example, [False], {"index": 0, "value": None})
    assert error is None and "ms with the shipped model" in output[1]
    assert server.output(last=None).count("Traceback") == tracebacks  # none of it failed inside Gradio
    softmax = raw.fn_index(first_input="True class")
    huge = "1" + "0" * 400
    body = (f'{{"data": ["beagle", 1.0, {huge}, -0.5, 3.0, 0.5, 2.0], "fn_index": {softmax}, '
            f'"session_hash": "{raw.session}"}}').encode()
    event = raw.http.post(join, content=body, headers={"Content-Type": "application/json"})
    assert event.status_code == 200, event.text
    output, error, _ = raw.results([event.json()["event_id"]])[event.json()["event_id"]]
    assert error is None and "far too large" in " ".join(str(o) for o in output), output
    temp = Path(server.env["GRADIO_TEMP_DIR"])
    folders_before = set(temp.iterdir())
    url = {"path": "http://127.0.0.1:9/cat.jpg", "url": "http://127.0.0.1:9/cat.jpg",
           "meta": {"_type": "gradio.FileData"}}
    output, error, _ = raw.call(raw.fn_index("predict"), [url, False])
    assert output is None and error.startswith("HTTP 422")  # never fetched: no folder left behind
    assert set(temp.iterdir()) == folders_before
    _assert_answers(gradio_client.Client(server.url, verbose=False), server)
    raw.close()


def test_a_file_input_of_the_wrong_type_is_refused_at_the_door_without_a_traceback(server):
    # Gradio checks a file input against its data model before any handler runs, and logged a pydantic
    # traceback for each wrong type; the front door (input_types.py) refuses them with one line.
    raw = RawClient(server.url, source="127.0.4.14")
    config, photo = raw.config, raw.upload(PHOTO)
    file_inputs = {c["id"] for c in config["components"] if c["type"] in ("image", "file", "gallery", "video")}
    events = _file_events(raw)
    takes_files = {d["id"] for d in config["dependencies"] if file_inputs & set(d["inputs"])}
    assert takes_files == {fn for _, fn, _ in events}  # every event with a file input (the Train tab has none)
    tracebacks = server.output(last=None).count("Traceback")
    join = server.url + "gradio_api/queue/join"
    wrong = (5, 1.5, True, "junk", "", [1, 2], [], [photo], {**photo, "meta": 5}, {**photo, "meta": "x"},
             {**photo, "size": "big"}, {**photo, "orig_name": 7})
    for name, fn, data in events:
        for value in wrong:
            answer = raw.http.post(join, json={"data": data(value), "fn_index": fn, "session_hash": raw.session})
            detail = answer.json().get("detail", answer.text)
            assert answer.status_code == 422 and "must be a file uploaded to this server" in detail, (name, value)
            assert "\n" not in detail and len(detail) < 300
        answer = raw.http.post(join, json={"data": data(photo)[:1], "fn_index": fn, "session_hash": raw.session})
        assert answer.status_code == 422 and "input values; the request sent 1" in answer.text, answer.text
        output, error, _ = raw.call(fn, data({"x": 1}))  # no path: the handler's "no photo" (or the door's 422)
        assert (output is None and error.startswith("HTTP 422")) or "No photo yet" in str(output), (name, error)
        odd_meta = {"path": photo["path"], "meta": {"_type": "other"}}  # gr.Image's model takes it, gr.File's not
        output, error, _ = raw.call(fn, data(odd_meta))
        assert (output is None and error.startswith("HTTP 422")) or error is None, (name, error)
    predict = "gradio_api/call/predict", "gradio_api/call/v2/predict", "gradio_api/run/predict"
    for route, body in ((predict[0], {"data": [5, False]}), (predict[0], {"data": ["junk", False]}),
                        (predict[1], {"photo": 5, "use_session_model": False}), (predict[1], {"photo": [photo]}),
                        (predict[2], {"data": [{"path": photo["path"], "meta": 3}, False]})):
        answer = raw.http.post(server.url + route, json=body)
        assert answer.status_code == 422 and "must be a file uploaded" in answer.text, (route, answer.text)
    for route, body, expected in ((predict[1], {"picture": photo}, "Parameter `picture` is not a valid"),
                                  ("gradio_api/run/nothing", {"data": [1]}, "no event named 'nothing'")):
        answer = raw.http.post(server.url + route, json=body)
        assert answer.status_code == 422 and expected in answer.text, (route, answer.text)
    for route, body in ((predict[0], {"data": [photo, False]}), (predict[1], {"photo": photo})):  # right ones pass
        answer = raw.http.post(server.url + route, json=body)
        assert answer.status_code == 200, answer.text
        streamed = raw.http.get(server.url + route + "/" + answer.json()["event_id"]).text
        assert "event: complete" in streamed and "Pug (dog)" in streamed, streamed[:300]
    output, error, _ = raw.call(raw.fn_index("predict"), [photo, False])
    assert error is None and output[0]["label"] == "Pug (dog)"
    assert server.output(last=None).count("Traceback") == tracebacks, server.output()
    raw.close()


def test_wrong_logins_are_throttled_per_address():
    import inspect

    import gradio.route_utils
    import gradio.routes

    assert gradio.routes.compare_passwords_securely is gradio.route_utils.compare_passwords_securely  # the login's
    assert "compare_digest" in inspect.getsource(gradio.route_utils.compare_passwords_securely)  # constant time
    with DemoServer(["--auth", "teacher:s3cret"]) as locked:
        guesser = RawClient(locked.url, source="127.0.4.9")
        codes = [guesser.login("teacher", f"guess{i}") for i in range(50)]
        assert codes[:5] == [400] * 5 and set(codes[5:]) == {429}, codes
        assert guesser.login("teacher", "s3cret") == 429  # even the right one waits out the minute
        teacher = RawClient(locked.url, source="127.0.4.10")
        assert teacher.login("teacher", "s3cret") == 200  # another address is not held up
        guesser.close()
        teacher.close()


def test_every_route_into_the_queue_is_checked(server, tmp_path):
    raw = RawClient(server.url, source="127.0.4.11")
    folder = str(Path(raw.upload(PHOTO)["path"]).parent)
    bad = {"path": folder, "meta": {"_type": "gradio.FileData"}}
    for route, body in (("gradio_api/call/predict", {"data": [bad, False]}),
                        ("gradio_api/call/v2/predict", {"photo": bad, "use_session_model": False}),
                        ("gradio_api/call/v2/predict", {"anything": [[{"path": "/etc/passwd"}]]})):
        answer = raw.http.post(server.url + route, json=body)
        assert answer.status_code == 422 and "not a photo uploaded" in answer.text, (route, answer.text)
    answer = raw.http.post(server.url + "gradio_api/call/predict_example", json={"data": [False]})
    assert answer.status_code == 422 and "click on a thumbnail" in answer.text  # no SelectData(None) inside Gradio
    files = [("files", (f"p{i}.jpg", PHOTO.read_bytes())) for i in range(6)]  # the page sends one at a time
    answer = raw.http.post(server.url + "gradio_api/upload", files=files)
    assert answer.status_code >= 400
    assert len(raw.http.post(server.url + "gradio_api/upload", files=files[:2]).json()) == 2
    raw.close()


def test_the_map_switch_takes_only_true_or_false_and_echoes_nothing_else(server):
    raw = RawClient(server.url, source="127.0.4.14")
    index = raw.fn_index(first_input="Show where the model looked")
    for value, shown in ((True, True), (False, False), ("x" * 1000, False), ({"a": 1}, False), (1, False)):
        out, err, _ = raw.call(index, [value])
        assert err is None and [u["visible"] for u in out] == [not shown, shown], (value, out)
    raw.close()


def test_parallel_and_forwarded_logins_are_throttled_too():
    with DemoServer(["--auth", "teacher:s3cret"]) as locked:
        codes, lock = [], threading.Lock()

        def guess(i):
            me = RawClient(locked.url, source="127.0.4.12")
            code = me.login("teacher", f"guess{i}")
            with lock:
                codes.append(code)
            me.close()

        threads = [threading.Thread(target=guess, args=(i,)) for i in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert codes.count(400) <= 5 and codes.count(429) >= 15, codes  # all at once: still 5 tries a minute
        forger = RawClient(locked.url, source="127.0.4.13")  # a header cannot make one address many
        for i in range(5):
            forger.http.headers["X-Forwarded-For"] = f"10.9.8.{i}"
            assert forger.login("teacher", "nope") == 400
        forger.http.headers["X-Forwarded-For"] = "10.9.8.99"
        assert forger.login("teacher", "s3cret") == 429
        forger.close()


def test_the_about_tab_shows_the_model_card_and_flagging_is_off_by_default(server):
    raw = RawClient(server.url)
    try:
        config = raw.config
    finally:
        raw.close()
    card = (Path(__file__).resolve().parents[1] / "demo" / "model" / "README.md").read_text(encoding="utf-8")
    shown = [c["props"].get("value") for c in config["components"] if c["props"].get("elem_id") == "model-card"]
    assert [s.strip() for s in shown] == [card.strip()]
    assert not any(dep.get("api_name") == "flag_wrong_breed" for dep in config["dependencies"])
    assert not any(c["props"].get("elem_id") == "flag-send" for c in config["components"])
