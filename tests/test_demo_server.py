"""The real server: ``python -m demo`` in a child process, called over HTTP with gradio_client.

One server for the module (starting it takes a few seconds); it is stopped at the end.
"""

from __future__ import annotations

import json
import urllib.request

import pytest
from PIL import Image

from demo.server import DemoServer

gradio_client = pytest.importorskip("gradio_client")
MB = 2**20


@pytest.fixture(scope="module")
def server():
    with DemoServer() as running:
        yield running


@pytest.fixture(scope="module")
def client(server):
    return gradio_client.Client(server.url, verbose=False)


def _predict(client, path):
    return client.predict(gradio_client.handle_file(str(path)), False, api_name="/predict")


def _assert_answers(client, server):
    """The server is alive and still predicts (after whatever the test sent it)."""
    assert server.process.poll() is None, server.output()
    with urllib.request.urlopen(server.url, timeout=10) as response:
        assert response.status == 200


@pytest.mark.parametrize("name,breed", [("keeshond_119.jpg", "keeshond"), ("Bengal_169.jpg", "Bengal")])
def test_predicts_the_breed_of_a_real_photo(client, pets_sample, name, breed):
    top5, message, preview = _predict(client, pets_sample / "images" / name)
    assert top5["label"] == breed
    assert top5["confidences"][0]["label"] == breed and len(top5["confidences"]) == 5
    assert message.startswith(f"### {breed}\n") and "ms with the shipped model" in message
    with Image.open(preview) as seen:  # the square the model looked at, served back as an image
        assert seen.size == (224, 224)


def _event(client, api_name: str, data: list, event_data=None):
    """Call an event by its API name over raw HTTP (as any script could) and return its output list."""
    import gradio_client.utils

    fn_index = next(d["id"] for d in client.config["dependencies"] if d.get("api_name") == api_name)
    body = {"data": data, "fn_index": fn_index, "session_hash": "raw-test", "event_data": event_data}
    request = urllib.request.Request(client.src.rstrip("/") + "/gradio_api/queue/join", json.dumps(body).encode(),
                                     {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        assert response.status == 200
    with urllib.request.urlopen(client.src.rstrip("/") + "/gradio_api/queue/data?session_hash=raw-test",
                                timeout=120) as stream:
        for line in stream:
            if line.startswith(b"data: "):
                msg = json.loads(line[6:])
                if msg.get("msg") == "process_completed":
                    return msg["output"].get("data"), msg["output"].get("error")
    raise AssertionError("no result")


def test_example_thumbnails_are_picked_by_position_only(client):
    # a click sends the position of the thumbnail; the server reads only its own example photos
    output, error = _event(client, "predict_example", [False, None], {"index": 1, "value": None})
    assert error is None, error
    top5, message, _ = output
    assert message.startswith("### ") and "ms with the shipped model" in message and top5["label"]
    for index in (8, -1, 10**12, "0", 1.0, True, None, [0, 0], {"name": "x"}):
        (top5, message, preview), _ = _event(client, "predict_example", [False, None], {"index": index, "value": None})
        assert not top5 and preview is None and message.startswith("No photo yet"), index
    for event in ({"index": {"path": "/etc/passwd"}, "value": None}, {"path": "/etc/passwd"}, "junk"):
        output, error = _event(client, "predict_example", [False, None], event)  # refused before our handler
        assert output is None and "root:" not in str(error)


def test_webcam_and_clipboard_pictures_go_through_the_same_checks(client, pets_sample, tmp_path):
    # The webcam/paste input is a gr.Image whose event skips Gradio's decoding (preprocess=False).
    photo = gradio_client.handle_file(str(pets_sample / "images" / "Bengal_169.jpg"))
    top5, message, _ = client.predict(photo, False, api_name="/predict_camera")
    assert top5["label"] == "Bengal" and message.startswith("### Bengal\n")
    Image.new("L", (7000, 7000)).save(tmp_path / "paste.png", optimize=True)  # 49 megapixels
    _, message, _ = client.predict(gradio_client.handle_file(str(tmp_path / "paste.png")), False,
                                   api_name="/predict_camera")
    assert "is 7000x7000 = 49 megapixels; the demo refuses images over 40 megapixels" in message


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


def test_launch_options(server):
    assert server.url.startswith("http://127.0.0.1:")
    with urllib.request.urlopen(server.url + "config", timeout=10) as response:
        config = json.load(response)
    assert config["max_file_size"] == 10 * MB
    assert config["show_error"] is False and config["run_history"] is False
    assert config["analytics_enabled"] is False and config["mcp_server"] is False
    labels = {c["props"].get("label") for c in config["components"] if "props" in c}
    assert {"Upload a photo", "Top 5 breeds", "True class", "Presized on the CPU: 460x460"} <= labels


def test_only_prediction_and_training_are_api_endpoints(client, pets_sample):
    # PETS_SAMPLE is set (the fixture checked it), so this server has training data and its /train event
    endpoints = set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    assert endpoints == {"/predict", "/predict_camera", "/predict_example", "/train"}  # the labs are page-only


def test_the_server_compiles_its_model_in_the_background_and_keeps_answering(server, client, pets_sample):
    said = server.wait_for_output("single photos now take the fast path", "predictions stay on the plain path",
                                  timeout=400)
    assert said == "single photos now take the fast path", server.output()
    top5, message, _ = _predict(client, pets_sample / "images" / "keeshond_119.jpg")
    assert top5["label"] == "keeshond" and "ms with the shipped model" in message


def test_a_fresh_machine_with_the_full_download_has_examples_and_training(full_pets_home, tmp_path):
    # PETS_SAMPLE unset, only the full download in the cache: the demo picks the sample out of it
    home = tmp_path / "home"
    home.mkdir()
    (home / "oxford-iiit-pet").symlink_to(full_pets_home / "oxford-iiit-pet")
    with DemoServer(["--no-compile"], env={"PETS_SAMPLE": None, "PETBREEDS_HOME": str(home)}) as fresh:
        c = gradio_client.Client(fresh.url, verbose=False)
        endpoints = set(c.view_api(print_info=False, return_format="dict")["named_endpoints"])
        assert "/train" in endpoints and "/predict_example" in endpoints
        assert "Picked the 370-photo pet sample" in fresh.output()
        gallery = next(x for x in c.config["components"] if x.get("props", {}).get("elem_id") == "predict-examples")
        shown = [item["image"]["orig_name"] for item in gallery["props"]["value"]]
        assert len(shown) == 8 and shown[0][0].isupper() and shown[-1][0].islower()
        output, error = _event(c, "predict_example", [False, None], {"index": 0, "value": None})
        assert error is None and "ms with the shipped model" in output[1]
