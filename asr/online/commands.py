"""Commands of the streaming package: ``asr serve`` (``asr transcribe --stream`` is an
option of ``asr transcribe``, asr/decode/commands.py)."""

from __future__ import annotations

import argparse

from asr.cli import DefaultsHelpFormatter, non_negative_float, non_negative_int, positive_float, positive_int


def add_stream_options(p: argparse.ArgumentParser) -> None:
    """Options of streaming recognition shared by ``asr serve`` and ``asr transcribe --stream``."""
    from asr.online.endpoint import add_endpoint_options

    p.add_argument("--no-lattice-final", action="store_true",
                   help="finals from the incremental 1-best decoder (confidence 1) instead of a lattice decoded "
                   "over the segment at its endpoint (word posteriors as confidences; the decoder offline "
                   "decoding uses)")
    p.add_argument("--lattice-beam", type=positive_float, default=8.0, help="lattice beam of the finals' lattices")
    p.add_argument("--cmn-window", type=positive_int, default=600,
                   help="online CMVN: frames in the moving window (asr transcribe without --stream: applied too "
                   "when the model has cmvn: online, so offline == streaming; an error for other modes)")
    p.add_argument("--global-frames", type=non_negative_int, default=200,
                   help="online CMVN: frames' worth of the model's global stats (MODEL_DIR/global_cmvn.stats) "
                   "that top up a short window (offline: as --cmn-window)")
    add_endpoint_options(p)


def stream_options(args, search_cfg):
    from asr.features.online_cmvn import OnlineCmvnOptions
    from asr.online.endpoint import endpoint_config_from_args
    from asr.online.recognizer import StreamOptions

    return StreamOptions(search=search_cfg, endpoint=endpoint_config_from_args(args),
                         lattice_final=not args.no_lattice_final,
                         cmvn=OnlineCmvnOptions(cmn_window=args.cmn_window, global_frames=args.global_frames))


def register(subparsers) -> None:
    from asr.decode.commands import search_options

    p = subparsers.add_parser(
        "serve",
        help="WebSocket recognition server (Vosk protocol) with a browser page",
        description="Serve streaming recognition over WebSocket with the Vosk server protocol, so Vosk clients "
        "work unchanged: the client sends {\"config\": {\"sample_rate\": 16000}}, binary little-endian 16-bit "
        "mono PCM chunks, then {\"eof\": 1}; the server answers every chunk with {\"partial\": \"...\"} or, at "
        "an endpoint, {\"text\": \"...\", \"result\": [{\"word\", \"start\", \"end\", \"conf\"}, ...]}, and "
        "the last segment after eof. http://HOST:PORT/ is a page that records the microphone and shows the "
        "results. The model is loaded once; each connection has its own stream state and decoder in one of "
        "--workers worker processes; clients beyond --max-clients are refused with a message. "
        "See docs/streaming.md. e.g. asr serve --model-dir exp/final --port 2700",
        formatter_class=DefaultsHelpFormatter,
    )
    search_options(p)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    p.add_argument("--port", type=int, default=2700, help="TCP port (0: any free port, logged)")
    p.add_argument("--workers", type=int, default=2,
                   help="worker processes running the streams (forked after loading: the model is shared)")
    p.add_argument("--max-clients", type=int, default=8, help="streams served at once; more are refused")
    p.add_argument("--max-message-bytes", type=int, default=1 << 20,
                   help="largest WebSocket message accepted; a bigger one closes that connection (1009); an audio chunk "
                   "may hold at most the audio these bytes are at the model's rate (more: an error reply)")
    p.add_argument("--num-threads", type=int, default=1, help="torch threads per worker")
    p.add_argument("--idle-timeout", type=non_negative_float, default=60.0,
                   help="seconds a client may send nothing before its connection is closed with an error message "
                   "(its stream would hold one of --max-clients for ever); 0: never")
    add_stream_options(p)
    p.set_defaults(func=_serve)


def _serve(args) -> int:
    from asr.decode.commands import search_config
    from asr.errors import ConfigError
    from asr.online.server import ServerOptions, run_server

    if args.workers < 1 or args.max_clients < 1 or args.max_message_bytes < 1024:
        raise ConfigError("--workers and --max-clients must be >= 1, --max-message-bytes >= 1024")
    opts = ServerOptions(host=args.host, port=args.port, workers=args.workers, max_clients=args.max_clients,
                         max_message_bytes=args.max_message_bytes, torch_threads=args.num_threads,
                         idle_timeout=args.idle_timeout)
    run_server(args.model_dir, args.graph_dir, stream_options(args, search_config(args)), opts)
    return 0
