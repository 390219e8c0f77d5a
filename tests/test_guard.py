"""The server's own sweep (``demo/sweeper.py``) and front door (``demo/guard.py``), piece by piece;
``test_demo_server.py`` attacks the real server with the same cases."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from pathlib import Path

from demo import sweeper
from demo.guard import Guard, Limits, RateWindow, file_payload_problem
from demo.sweeper import Sweeper, sweep

OLD = time.time() - 3600


def _old(path: Path) -> Path:
    os.utime(path, (OLD, OLD), follow_symlinks=False)
    return path


def test_the_sweep_deletes_old_regular_files_only_and_survives_everything_else(tmp_path):
    uploads, outside = tmp_path / "uploads", tmp_path / "outside"
    (uploads / "a").mkdir(parents=True)
    outside.mkdir()
    photo = uploads / "a" / "photo.jpg"
    photo.write_bytes(b"x")
    _old(photo)
    fresh = uploads / "a" / "fresh.jpg"
    fresh.write_bytes(b"x")
    secret = outside / "secret.txt"
    secret.write_text("keep me")
    _old(secret)
    link = uploads / "a" / "link.txt"
    link.symlink_to(secret)
    _old(link)
    folder = uploads / "a"  # a folder named in a payload: Gradio's own sweep died on it
    kept = uploads / "example.jpg"
    kept.write_bytes(b"x")
    _old(kept)
    empty = uploads / "empty"
    empty.mkdir()
    recorded = {str(folder), str(link), str(photo), str(fresh), str(secret), str(kept), str(uploads / "gone.jpg")}
    _old(uploads / "a")
    _old(empty)
    deleted = sweep([recorded], uploads, age=60, keep={str(kept)})
    assert deleted == 1 and not photo.exists()                                  # old, regular, inside: deleted
    assert fresh.exists() and kept.exists() and secret.read_text() == "keep me"  # too new, kept, outside
    assert folder.is_dir() and link.is_symlink()                                 # never deleted, only forgotten
    assert recorded == {str(fresh), str(kept)}
    assert not empty.exists()  # an empty folder, old: gone (the folder "a" is not empty, so it stays)


def test_a_dead_sweep_is_started_again_on_the_next_request(tmp_path, monkeypatch):
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"x")
    _old(photo)
    recorded = {str(photo)}
    calls = []

    class Boom(BaseException):  # not an Exception: the loop's own guard does not catch it
        pass

    real = sweeper.sweep

    def dying_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise Boom
        return real(*args, **kwargs)

    monkeypatch.setattr(sweeper, "sweep", dying_once)
    monkeypatch.setattr(threading, "excepthook", lambda args: None)  # the thread's death is expected here
    s = Sweeper(lambda: [recorded], tmp_path, age=60, interval=0.05)
    s.ensure_running()
    deadline = time.monotonic() + 10
    while s._thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not s._thread.is_alive() and photo.exists()  # it died on its first pass
    s.ensure_running()  # what every request does
    while photo.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    s.stop()
    assert s.restarts == 1 and not photo.exists()


def test_a_payload_may_name_only_regular_files_in_the_upload_folder(tmp_path):
    uploads, examples = tmp_path / "uploads", tmp_path / "examples"
    (uploads / "x").mkdir(parents=True)
    examples.mkdir()
    photo, example, secret = uploads / "x" / "a.jpg", examples / "pug.jpg", tmp_path / "secret.jpg"
    for f in (photo, example, secret):
        f.write_bytes(b"x")
    (uploads / "x" / "out.jpg").symlink_to(secret)
    folders, files = (uploads.resolve(),), (example.resolve(),)
    ok = [{"path": str(photo)}, {"path": str(example), "meta": {"_type": "gradio.FileData"}}, "a string", 3, None,
          {"no": "file"}]
    for data in ok:
        assert file_payload_problem([data, False], folders, files) is None, data
    bad = [{"path": str(uploads / "x")}, {"path": str(uploads)}, {"path": str(secret)}, {"path": "/dev/zero"},
           {"path": str(uploads / "x" / "out.jpg")}, {"path": str(uploads / "x" / ".." / ".." / "secret.jpg")},
           {"url": "http://127.0.0.1:9/a.jpg"}, {"path": "http://127.0.0.1:9/a.jpg"}, {"path": 5},
           {"path": str(photo) + "\x00"}, [[{"path": str(secret)}]], {"image": {"path": str(secret)}}]
    for data in bad:
        assert "not a photo uploaded" in file_payload_problem([data], folders, files), data


def test_a_rate_window_forgets_what_is_older_than_its_span():
    now = [0.0]
    window = RateWindow(60, clock=lambda: now[0])
    for _ in range(5):
        window.add("127.0.0.9", 2.0)
    assert window.total("127.0.0.9") == (5, 10.0) and window.total("other") == (0, 0)
    now[0] = 30.0
    assert window.wait("127.0.0.9") == 30
    now[0] = 61.0
    assert window.total("127.0.0.9") == (0, 0)
    assert Limits().body_limit == 64 * 1024 and Limits().login_failures == 5


def test_admit_checks_and_counts_in_one_step_under_both_bounds():
    now = [0.0]
    window = RateWindow(60, clock=lambda: now[0])
    assert [window.admit("a", 3) for _ in range(5)] == [True, True, True, False, False]
    assert window.total("a") == (3, 3.0)  # a refusal is not counted
    assert window.admit("b", 10, 40, max_weight=100) and window.admit("b", 10, 60, max_weight=100)
    assert not window.admit("b", 10, 1, max_weight=100) and window.total("b") == (2, 100)
    now[0] = 61.0
    assert window.admit("a", 3) and window.total("a") == (1, 1.0)
    counts, threads = [], [threading.Thread(target=lambda: counts.append(window.admit("c", 5))) for _ in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert counts.count(True) == 5


def _guarded_login_codes(n: int, guard_app) -> list[int]:
    """Send ``n`` logins to a Guard at once, each body arriving in two pieces (an await in between)."""
    guard = Guard(guard_app, Limits(login_failures=5))

    async def one(i):
        pieces = [{"type": "http.request", "body": b"username=t&", "more_body": True},
                  {"type": "http.request", "body": f"password=g{i}".encode(), "more_body": False}]

        async def receive():
            await asyncio.sleep(0)  # as over a network: every other login gets its turn here
            return pieces.pop(0)

        sent = []

        async def send(message):
            sent.append(message)

        scope = {"type": "http", "method": "POST", "path": "/login", "client": ("127.0.0.5", 1), "headers": []}
        await guard(scope, receive, send)
        return next(m["status"] for m in sent if m["type"] == "http.response.start")

    async def all_at_once():
        return await asyncio.gather(*(one(i) for i in range(n)))

    return asyncio.run(all_at_once())


def test_logins_sent_all_at_once_get_only_the_allowed_tries():
    tried = []

    async def wrong_password(scope, receive, send):
        tried.append((await receive())["body"])
        await asyncio.sleep(0.01)  # Gradio takes a while to answer: the others arrive meanwhile
        await send({"type": "http.response.start", "status": 400, "headers": []})
        await send({"type": "http.response.body", "body": b"wrong"})

    codes = _guarded_login_codes(20, wrong_password)
    assert codes.count(400) == 5 and codes.count(429) == 15 and len(tried) == 5, codes


def test_events_sent_all_at_once_get_only_the_visitors_places_in_the_queue():
    queue = []  # who has an event waiting: the app puts it there after a moment, as Gradio's queue does

    async def enqueue(scope, receive, send):
        await receive()
        await asyncio.sleep(0.01)
        queue.append(scope["client"][0])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    guard = Guard(enqueue, Limits(queue_places=8), queued=queue.count)

    async def one(i, who="127.0.0.6"):
        pieces = [{"type": "http.request", "body": b'{"fn_index": 0, "data": [], "session_hash": "s%d"}' % i,
                   "more_body": False}]

        async def receive():
            await asyncio.sleep(0)
            return pieces.pop(0) if pieces else {"type": "http.disconnect"}

        sent = []

        async def send(message):
            sent.append(message)

        scope = {"type": "http", "method": "POST", "path": "/gradio_api/queue/join", "client": (who, 1), "headers": []}
        await guard(scope, receive, send)
        return next(m["status"] for m in sent if m["type"] == "http.response.start")

    async def all_at_once():
        return await asyncio.gather(*(one(i) for i in range(20)), one(99, who="127.0.0.7"))

    codes = asyncio.run(all_at_once())
    assert codes[:20].count(200) == 8 and codes[:20].count(429) == 12 and codes[20] == 200, codes
    assert queue.count("127.0.0.6") == 8 and not guard._joining  # nobody is left half-way in


def test_the_input_types_of_an_event_are_gradios_own_data_models():
    import gradio as gr

    from demo.input_types import input_problem

    with gr.Blocks() as app:
        photo, file, tick = gr.Image(label="Your photo", type="filepath"), gr.File(label="Photo"), gr.Checkbox()
        gr.Button().click(lambda *a: None, [photo, file, tick], None)
    event = next(iter(app.fns.values()))
    data = {"path": "/uploads/a/pug.jpg", "meta": {"_type": "gradio.FileData"}}
    assert input_problem(event, [data, data, True]) is None
    assert input_problem(event, [None, None, "a tick's value is the handler's to check"]) is None
    for wrong, kind in ((5, "a number"), ("junk", "a string"), ([data], "a list"), ({**data, "meta": 5}, "an object")):
        assert input_problem(event, [wrong, None, True]) == (
            'Input 1 of this event ("Your photo") must be a file uploaded to this server, {"path": "<the path the '
            f'upload answered>", "meta": {{"_type": "gradio.FileData"}}}}, or null, not {kind}.')
        assert 'Input 2 of this event ("Photo")' in input_problem(event, [None, wrong, True])
    assert "not an object" in input_problem(event, [None, {"path": "x"}, True])  # gr.File's model wants its meta
    assert "takes 3 input values; the request sent 2" in input_problem(event, [data, data])
    assert "must be a list" in input_problem(event, {"photo": data})


def test_signed_in_reads_gradios_login_cookie():
    from types import SimpleNamespace

    from demo.sessions import signed_in

    def scope(cookie):
        return {"headers": [(b"cookie", cookie.encode())]}

    open_server = SimpleNamespace(auth=None, auth_dependency=None)
    locked = SimpleNamespace(auth={"teacher": "pw"}, auth_dependency=None, cookie_id="c1", tokens={"tok": "teacher"})
    assert signed_in(open_server, scope(""))
    assert signed_in(locked, scope("access-token-c1=tok")) and signed_in(locked, scope("access-token-unsecure-c1=tok"))
    assert not signed_in(locked, scope("access-token-c1=guess")) and not signed_in(locked, scope("access-token-c2=tok"))
    assert not signed_in(locked, {"headers": []}) and not signed_in(None, scope("access-token-c1=tok"))
