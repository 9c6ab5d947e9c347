"""Load test of ``asr serve``: N concurrent loopback clients streaming a data dir's
utterances at real time over the Vosk protocol.

Usage: bench/serve_load.py --model-dir DIR --data-dir DATA --clients 1,2,4,6 [--seconds 60] [--workers 2]
  e.g. bench/serve_load.py --model-dir recipes/synth/exp/lstmp/final --data-dir recipes/synth/data/test \\
         --clients 1,2,3,4,6,8 --seconds 60 --beam 11

For each N a fresh server (``python -m asr serve``, --workers threads) is started; N client
tasks each stream utterances one per connection, sending 16-bit PCM in --chunk-seconds
chunks on the real-time schedule and reading one reply per chunk (like Vosk's test.py),
until --seconds of wall time are used. A stream's RTF is the time the server took to
answer its chunks (sum over chunks of reply time − send time, the eof answer included)
divided by its audio duration; a stream keeps up when its RTF is below 1. Per N the script
prints the streams' RTF (median, max), the final latency after eof, and the WER of the
finals against DATA/text; at the end the largest N where every stream kept up.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


async def client(port, utts, audio, chunk, deadline, results):
    from websockets.asyncio.client import connect

    i = 0
    while time.perf_counter() < deadline and i < len(utts):
        u = utts[i]
        i += 1
        x = audio[u]
        step = 2 * int(round(chunk * 16000))
        words, busy = [], 0.0
        async with connect(f"ws://127.0.0.1:{port}/", max_size=None) as ws:
            await ws.send(json.dumps({"config": {"sample_rate": 16000}}))
            t0 = time.perf_counter()
            for k in range(0, len(x), step):
                due = t0 + (k + step) / 32000
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
                ts = time.perf_counter()
                await ws.send(x[k:k + step])
                r = json.loads(await ws.recv())
                busy += time.perf_counter() - ts
                words += r.get("text", "").split()
            ts = time.perf_counter()
            await ws.send('{"eof" : 1}')
            r = json.loads(await ws.recv())
            final_latency = time.perf_counter() - ts
            busy += final_latency
            words += r.get("text", "").split()
        dur = len(x) / 32000
        results.append({"utt": u, "words": words, "audio": dur, "rtf": busy / dur, "final_latency": final_latency})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_level(a, n, utts, audio, refs):
    port = free_port()
    cmd = [sys.executable, "-m", "asr", "-q", "serve", "--model-dir", a.model_dir, "--port", str(port),
           "--workers", str(a.workers), "--max-clients", str(max(n, 1)), "--beam", str(a.beam),
           "--max-active", str(a.max_active), "--lattice-beam", str(a.lattice_beam)] + \
        (["--no-lattice-final"] if a.no_lattice_final else [])
    env = dict(os.environ, OMP_NUM_THREADS="1")
    srv = subprocess.Popen(cmd, env=env)
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.3)
        results: list = []
        share = [utts[k::n] for k in range(n)]
        end = time.perf_counter() + a.seconds

        async def all_clients():
            await asyncio.gather(*(client(port, share[k], audio, a.chunk_seconds, end, results) for k in range(n)))

        asyncio.run(all_clients())
    finally:
        srv.terminate()
        srv.wait(30)
    from asr.score.wer import format_summary, score_texts

    res = score_texts({r["utt"]: refs[r["utt"]] for r in results}, {r["utt"]: r["words"] for r in results})
    rtf = np.array([r["rtf"] for r in results])
    extra = {}
    if a.offline_dir:  # the offline first pass on the same utterances
        from asr.score.wer import read_text

        off = read_text(Path(a.offline_dir) / "hyp.txt")
        got = [r["utt"] for r in results if r["utt"] in off]
        extra["offline_wer_same_utts"] = format_summary(
            score_texts({u: refs[u] for u in got}, {u: off[u] for u in got})).splitlines()[0]
    return {**extra, "clients": n, "streams": len(results), "audio_seconds": round(sum(r["audio"] for r in results), 1),
            "rtf_median": round(float(np.median(rtf)), 3), "rtf_max": round(float(rtf.max()), 3),
            "keeps_up": bool(np.all(rtf < 1.0)),
            "final_latency_median_ms": round(1000 * float(np.median([r["final_latency"] for r in results])), 1),
            "wer": format_summary(res).splitlines()[0]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model-dir", required=True)
    p.add_argument("--data-dir", required=True)
    p.add_argument("--clients", default="1,2,4")
    p.add_argument("--seconds", type=float, default=60.0, help="wall time per level")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--chunk-seconds", type=float, default=0.1)
    p.add_argument("--beam", type=float, default=13.0)
    p.add_argument("--max-active", type=int, default=7000)
    p.add_argument("--lattice-beam", type=float, default=8.0)
    p.add_argument("--no-lattice-final", action="store_true")
    p.add_argument("--offline-dir", default=None, help="decode dir whose hyp.txt gives the offline WER on the same utterances")
    p.add_argument("--out", default=None)
    a = p.parse_args(argv)

    from asr.data.audio import read_audio
    from asr.io.tables import read_table
    from asr.score.wer import read_text

    data = Path(a.data_dir)
    wavs = read_table(data / "wav.scp")
    refs = read_text(data / "text")
    utts = sorted(wavs)
    audio = {u: (np.clip(read_audio(wavs[u], target_rate=16000, utt=u), -1, 1) * 32767).astype("<i2").tobytes()
             for u in utts}
    levels = []
    for n in [int(v) for v in a.clients.split(",")]:
        lv = run_level(a, n, utts, audio, refs)
        levels.append(lv)
        print(json.dumps(lv), flush=True)
    ok = [lv["clients"] for lv in levels if lv["keeps_up"]]
    summary = {"levels": levels, "largest_n_keeping_up": max(ok) if ok else None, "workers": a.workers,
               "load": os.getloadavg()}
    print(json.dumps({"largest_n_keeping_up": summary["largest_n_keeping_up"], "loadavg": summary["load"]}))
    if a.out:
        Path(a.out).write_text(json.dumps(summary, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
