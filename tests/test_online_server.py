"""``asr serve``: Vosk-protocol round trips with a real WebSocket client, bad input, more
clients than allowed, and the browser page in headless Chromium (fake microphone)."""

import asyncio
import json
import shutil
import subprocess
import threading
import time

import numpy as np
import pytest

from online_fixtures import make_tone_model, tone_audio


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A RecognitionServer on a free loopback port, in a background thread."""
    from asr.online.server import ServerOptions

    fx = make_tone_model(tmp_path_factory.mktemp("tones"))
    yield from _run_server(fx, ServerOptions(port=0, workers=2, max_clients=2, max_message_bytes=64 * 1024))


def _run_server(fx, opts):
    """Yield ``(fx, server, port)`` while the server runs in a background thread."""
    from asr.online.recognizer import OnlineModel
    from asr.online.server import RecognitionServer

    srv = RecognitionServer(OnlineModel(fx["model_dir"]), opts)
    loop = asyncio.new_event_loop()
    ready = loop.create_future()
    stop = loop.create_future()
    th = threading.Thread(target=lambda: loop.run_until_complete(srv.serve(ready, stop)), daemon=True)
    th.start()
    deadline = time.time() + 30
    while not ready.done() and time.time() < deadline:
        time.sleep(0.05)
    port = ready.result()
    yield fx, srv, port
    loop.call_soon_threadsafe(stop.set_result, None)
    th.join(10)


def pcm(x: np.ndarray) -> bytes:
    return (np.clip(x, -1, 1) * 32767).astype("<i2").tobytes()


def connect(port):
    from websockets.sync.client import connect as ws_connect

    return ws_connect(f"ws://127.0.0.1:{port}/", open_timeout=10, close_timeout=5)


def stream_words(ws, x, chunk=3200):
    """Send like vosk-server's test.py: one reply read per chunk, then eof."""
    replies = []
    for i in range(0, len(x), chunk):
        ws.send(x[i:i + chunk])
        replies.append(json.loads(ws.recv(timeout=30)))
    ws.send('{"eof" : 1}')
    replies.append(json.loads(ws.recv(timeout=30)))
    return replies


def test_round_trip(server):
    fx, srv, port = server
    x = np.concatenate([tone_audio(fx, ["CAT", "AT"]), np.zeros(16000, np.float32), tone_audio(fx, ["TAB"], seed=2)])
    with connect(port) as ws:
        ws.send(json.dumps({"config": {"sample_rate": 16000}}))
        replies = stream_words(ws, pcm(x))
    partials = [r["partial"] for r in replies if "partial" in r]
    results = [r for r in replies if "text" in r]
    assert "CAT" in partials
    assert [r["text"] for r in results if r["text"]] == ["CAT AT", "TAB"]
    first = next(r for r in results if r["text"])
    assert [w["word"] for w in first["result"]] == ["CAT", "AT"]
    w = first["result"][0]
    assert set(w) == {"word", "start", "end", "conf"} and abs(w["start"] - 0.58) < 0.011 and 0 < w["conf"] <= 1
    assert "text" in replies[-1]  # the final after eof


def test_bad_input_keeps_server_up(server):
    from websockets.exceptions import ConnectionClosed

    fx, srv, port = server
    x = tone_audio(fx, ["BAT", "TAB", "A"])
    with connect(port) as ws:
        ws.send("{not json")
        assert "malformed JSON" in json.loads(ws.recv(timeout=10))["error"]
        ws.send(json.dumps({"config": {"sample_rate": "fast"}}))
        assert "sample_rate must be a number" in json.loads(ws.recv(timeout=10))["error"]
        ws.send(json.dumps({"config": {"sample_rate": 50}}))
        assert "unsupported sample_rate" in json.loads(ws.recv(timeout=10))["error"]
        ws.send(json.dumps({"hello": 1}))
        assert "unknown message" in json.loads(ws.recv(timeout=10))["error"]
        ws.send(b"\x00\x01\x02")
        assert "not a whole number" in json.loads(ws.recv(timeout=10))["error"]
        ws.send(json.dumps({"config": {"sample_rate": 8000}}))  # a valid config still works after errors
        import soxr

        replies = stream_words(ws, pcm(soxr.resample(x, 16000, 8000)), chunk=1600)
        assert " ".join(r["text"] for r in replies if r.get("text")) == "BAT TAB A"
    # oversized message: that connection is closed with 1009 ...
    with connect(port) as ws:
        ws.send(b"\x00" * (128 * 1024))
        with pytest.raises(ConnectionClosed) as e:
            ws.recv(timeout=10)
        assert e.value.rcvd is None or e.value.rcvd.code == 1009 or e.value.sent.code == 1009
    # a client that disconnects mid-utterance
    try:
        with connect(port) as ws:
            ws.send(pcm(x[:8000]))
            ws.recv(timeout=10)
            ws.send(pcm(x[8000:16000]))
            ws.socket.close()  # gone without a close handshake
    except (ConnectionClosed, OSError):
        pass
    time.sleep(0.5)
    # ... and the server still serves
    with connect(port) as ws:
        replies = stream_words(ws, pcm(x))
        assert " ".join(r["text"] for r in replies if r.get("text")) == "BAT TAB A"
    deadline = time.time() + 10
    while srv.active and time.time() < deadline:
        time.sleep(0.05)
    assert srv.active == 0


def test_deeply_nested_json_is_an_error_reply(server):
    """JSON nested deeper than Python's recursion limit (30000 brackets, within the message
    size limit) is malformed input like any other: an error reply, the connection stays usable."""
    fx, srv, port = server
    x = tone_audio(fx, ["CAT"])
    with connect(port) as ws:
        ws.send("[" * 30000 + "]" * 30000)
        assert "malformed JSON" in json.loads(ws.recv(timeout=10))["error"]
        ws.send(json.dumps({"config": {"sample_rate": {"a": [[[[[[[[[[[[[1]]]]]]]]]]]]]}}}))
        assert "sample_rate must be a number" in json.loads(ws.recv(timeout=10))["error"]
        replies = stream_words(ws, pcm(x))
        assert " ".join(r["text"] for r in replies if r.get("text")) == "CAT"


def test_idle_client_is_closed_and_frees_its_stream(server):
    """A client that sends nothing (before or after some audio) would hold one of the
    max_clients streams for ever: after idle_timeout it gets an error and close code 1008."""
    from websockets.exceptions import ConnectionClosed

    from asr.online.server import ServerOptions

    fx = server[0]
    run = _run_server(fx, ServerOptions(port=0, workers=1, max_clients=1, idle_timeout=1.0))
    _, srv, port = next(run)
    try:
        for audio in (b"", pcm(tone_audio(fx, ["CAT"])[:8000])):
            with connect(port) as ws:
                if audio:
                    ws.send(audio)
                    assert "partial" in json.loads(ws.recv(timeout=10))
                t = time.time()
                assert json.loads(ws.recv(timeout=10)) == {"error": "no message for 1 s: closing the connection"}
                assert time.time() - t < 5
                with pytest.raises(ConnectionClosed) as e:
                    ws.recv(timeout=10)
                assert e.value.rcvd.code == 1008
        with connect(port) as ws:  # the one stream is free again: served, not refused
            ws.send(pcm(tone_audio(fx, ["CAT"])))
            ws.recv(timeout=10)
            time.sleep(0.5)  # a pause under the timeout is fine
            ws.send('{"eof" : 1}')
            assert json.loads(ws.recv(timeout=10))["text"] == "CAT"
    finally:
        next(run, None)


def test_port_in_use_stops_the_workers(server, caplog):
    """A port that cannot be bound is an error of serve(); its workers are stopped then, not
    left to die at exit (which logged 'worker ... died ... starting a new one')."""
    import socket

    from asr.online.recognizer import OnlineModel
    from asr.online.server import RecognitionServer, ServerOptions

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        srv = RecognitionServer(OnlineModel(server[0]["model_dir"]),
                                ServerOptions(port=taken.getsockname()[1], workers=1))
        with pytest.raises(OSError):
            asyncio.run(srv.serve())
    assert srv.workers._closing and not any(p.is_alive() for p in srv.workers.procs)
    time.sleep(0.5)
    assert not [r for r in caplog.records if "died" in r.getMessage()]


def test_audio_per_message_is_bounded_at_any_sample_rate(server):
    """max_message_bytes bounds the work of one message (a worker runs it at once while its other
    streams wait): at sample_rate 1000 the same bytes were 16x the audio (at 8000, 2x). A chunk of more audio
    than max_message_bytes holds at the model's rate gets an error; the connection stays usable."""
    import soxr

    fx, srv, port = server
    max_s = srv.opts.max_message_bytes / 2 / 16000  # 2.048 s
    x = tone_audio(fx, ["BAT", "TAB", "A"])
    with connect(port) as ws:
        ws.send(json.dumps({"config": {"sample_rate": 8000}}))
        ws.send(b"\0\0" * int(8000 * max_s + 8))  # 32 KiB: under max_message_bytes (64 KiB), 2.05 s of audio
        assert json.loads(ws.recv(timeout=10))["error"] == "audio chunk of 2.0 s at 8000 Hz: at most 2.0 s of audio per message"
        replies = stream_words(ws, pcm(soxr.resample(x, 16000, 8000)), chunk=1600)
        assert " ".join(r["text"] for r in replies if r.get("text")) == "BAT TAB A"


def test_more_clients_than_allowed_are_refused(server):
    from websockets.exceptions import ConnectionClosed

    fx, srv, port = server
    x = pcm(tone_audio(fx, ["A"]))
    with connect(port) as a, connect(port) as b:  # max_clients = 2
        for ws in (a, b):
            ws.send(x[:3200])
            ws.recv(timeout=10)
        with connect(port) as c:
            msg = json.loads(c.recv(timeout=10))
            assert "server busy" in msg["error"] and "max 2" in msg["error"]
            with pytest.raises(ConnectionClosed) as e:
                c.recv(timeout=10)
            assert e.value.rcvd.code == 1013
        for ws in (a, b):
            ws.send('{"eof": 1}')
            assert "text" in json.loads(ws.recv(timeout=10))
    assert srv.refused >= 1


def test_web_page_served(server):
    import urllib.request

    fx, srv, port = server
    html = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10).read().decode()
    assert "getUserMedia" in html and "sample_rate" in html
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/nope", timeout=10)
    assert e.value.code == 404


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        p = shutil.which(name)
        if p:
            return p
    return None


@pytest.mark.skipif(_chromium() is None, reason="Chromium is not installed (Debian: apt-get install chromium)")
def test_browser_page_with_fake_microphone(server, tmp_path):
    """Headless Chromium opens the page; its fake microphone plays a wav of tone words (looped);
    the page streams it to the server and shows the recognised words."""
    import soundfile as sf
    import urllib.request

    from websockets.sync.client import connect as ws_connect

    fx, srv, port = server
    one = np.concatenate([tone_audio(fx, ["TAB", "CAT", "AT"]), np.zeros(16000, np.float32)])
    sf.write(tmp_path / "mic.wav", one, 16000, subtype="PCM_16")
    prof = tmp_path / "profile"
    proc = subprocess.Popen(
        [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={prof}", "--remote-debugging-port=0", "--use-fake-ui-for-media-stream",
         "--use-fake-device-for-media-stream", f"--use-file-for-fake-audio-capture={tmp_path / 'mic.wav'}",
         "--autoplay-policy=no-user-gesture-required", f"http://127.0.0.1:{port}/?autostart=1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        port_file = prof / "DevToolsActivePort"
        while not port_file.exists() and time.time() < deadline:
            time.sleep(0.2)
        assert port_file.exists(), "Chromium did not start"
        time.sleep(0.3)
        devtools = int(port_file.read_text().split()[0])
        page = None
        while page is None and time.time() < deadline:
            tabs = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{devtools}/json/list", timeout=10).read())
            page = next((t for t in tabs if t.get("type") == "page" and str(port) in t.get("url", "")), None)
            time.sleep(0.2)
        assert page is not None
        status = finals = ""
        with ws_connect(page["webSocketDebuggerUrl"], max_size=None) as cdp:
            n = 0
            while time.time() < deadline:
                n += 1
                cdp.send(json.dumps({"id": n, "method": "Runtime.evaluate", "params": {
                    "expression": "[document.getElementById('status').textContent, "
                                  "document.getElementById('finals').textContent].join('|')",
                    "returnByValue": True}}))
                while True:
                    r = json.loads(cdp.recv(timeout=10))
                    if r.get("id") == n:
                        break
                value = r.get("result", {}).get("result", {}).get("value")
                if isinstance(value, str):  # (None while the page is still loading)
                    status, finals = value.split("|", 1)
                    if "TAB CAT AT" in finals:
                        break
                time.sleep(0.5)
        assert "listening" in status, status
        assert "TAB CAT AT" in finals, (status, finals)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_dead_worker_is_replaced(server):
    import os
    import signal

    fx, srv, port = server
    old = srv.workers.procs[0].pid
    os.kill(old, signal.SIGKILL)
    deadline = time.time() + 20
    while (srv.workers.procs[0].pid == old or not srv.workers.procs[0].is_alive()) and time.time() < deadline:
        time.sleep(0.1)
    assert srv.workers.procs[0].pid != old
    x = tone_audio(fx, ["CAT", "AT"])
    for _ in range(2):  # both workers serve
        with connect(port) as ws:
            replies = stream_words(ws, pcm(x))
        assert " ".join(r["text"] for r in replies if r.get("text")) == "CAT AT"


def _start_serve(fx, workers: int):
    """``asr serve`` as a user starts it, on a free loopback port; returns (process, port) once
    it accepts connections (within 60 s)."""
    import socket
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "asr", "serve", "--model-dir", str(fx["model_dir"]), "--host",
                             "127.0.0.1", "--port", str(port), "--workers", str(workers)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.2)
    return proc, port


def test_serve_command_round_trip_and_clean_stop(server, tmp_path):
    """``asr serve`` as a user starts it; SIGTERM stops it and its worker processes."""
    import signal
    from pathlib import Path

    fx, _, _ = server
    proc, port = _start_serve(fx, workers=2)
    try:
        with connect(port) as ws:
            ws.send(json.dumps({"config": {"sample_rate": 16000}}))
            replies = stream_words(ws, pcm(tone_audio(fx, ["BAT", "TAB", "A"])))
        assert " ".join(r["text"] for r in replies if r.get("text")) == "BAT TAB A"
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert f"serving on ws://127.0.0.1:{port}" in err
    time.sleep(0.5)
    left = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                cmd = (p / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if f"--port {port}" in cmd and "serve" in cmd:
                left.append(cmd)
    assert not left, left


def _children(pid: int) -> list[int]:
    from pathlib import Path

    out = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                stat = (p / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(p.name))
    return out


def _alive(pid: int) -> bool:
    from pathlib import Path

    try:  # a zombie (exited, not yet reaped) counts as gone
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_serve_worker_killed_mid_stream(server, tmp_path):
    """``asr serve --workers 1``: the worker is killed while a client streams. That client gets
    one clear error and a 1011 close (its later audio never reaches the new worker); the log
    has one line for the lost stream and no traceback; a new connection is recognised by the
    replacement worker; SIGTERM then stops the server and its workers within about 2 s."""
    import os
    import signal

    from websockets.exceptions import ConnectionClosed

    fx, _, _ = server
    proc, port = _start_serve(fx, workers=1)
    workers = []
    try:
        workers = _children(proc.pid)
        assert len(workers) == 1, workers
        x = pcm(tone_audio(fx, ["BAT", "TAB", "A"]))
        with connect(port) as ws:
            ws.send(x[:6400])
            assert "partial" in json.loads(ws.recv(timeout=10))
            os.kill(workers[0], signal.SIGKILL)
            msg = json.loads(ws.recv(timeout=10))  # told without having to send anything
            assert msg == {"error": "recognition worker died; this stream is lost, reconnect"}
            with pytest.raises(ConnectionClosed) as e:
                ws.send(x[6400:12800])
                ws.recv(timeout=10)
            assert e.value.rcvd is not None and e.value.rcvd.code == 1011
        deadline = time.time() + 20
        while time.time() < deadline and not [p for p in _children(proc.pid) if p not in workers]:
            time.sleep(0.1)
        new = [p for p in _children(proc.pid) if p not in workers]
        assert len(new) == 1, new
        workers += new
        with connect(port) as ws:  # the replacement serves new connections
            replies = stream_words(ws, x)
        assert " ".join(r["text"] for r in replies if r.get("text")) == "BAT TAB A"
    finally:
        workers = sorted(set(workers + _children(proc.pid)))
        t0 = time.time()
        proc.send_signal(signal.SIGTERM)
        try:
            _, err = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:  # (the server, or a worker holding its stderr, is still there)
            workers = sorted(set(workers + _children(proc.pid)))
            proc.kill()
            proc.stderr.close()
            err = "asr serve (or a worker) did not stop on SIGTERM"
        took = time.time() - t0
        left = [p for p in workers if _alive(p)]
        for p in left:  # never leave a process behind, even when the test fails
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
        proc.wait(10)
    assert proc.returncode == 0, err
    assert took < 10.0, (took, err)  # about 1 s on an idle machine; a wide margin for a loaded one
    assert not left, (left, err)
    assert "Traceback" not in err and "KeyError" not in err, err
    assert "died (exit code -9); 1 stream(s) lost; starting a new one" in err, err
    assert err.count("lost: recognition worker 0 died") == 1, err
