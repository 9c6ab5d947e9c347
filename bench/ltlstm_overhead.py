"""What the ltLSTM's layer-LSTM costs on top of its time-LSTM stack.

Trains (forward + backward + SGD step) on random chunks with (a) the time-LSTM stack and a
classifier on its top layer (= a plain peephole LSTM(P) stack) and (b) the full ltLSTM
(same time stack; the layer-LSTM runs after it over depth, batched over all frames).
Prints frames/s of both and the ratio. Usage::

    python bench/ltlstm_overhead.py [--layers 3 8] [--cells 256] [--batch 16] [--chunk 20] [--steps 10]

Timings on a shared CPU are noisy; compare ratios from the same run.
"""

from __future__ import annotations

import argparse
import time

import torch

from asr.nnet.ltlstm import LayerTrajectoryLSTM


class TimeStackOnly(torch.nn.Module):
    """The ltLSTM's time-LSTMs with a classifier on the top layer: the plain stack."""

    def __init__(self, lt: LayerTrajectoryLSTM, num_pdfs: int):
        super().__init__()
        self.lt = lt
        self.output = torch.nn.Linear(lt.out_dim, num_pdfs)

    def forward(self, x, state=None):
        h, state = self.lt.time_stack(x, state)
        return self.output(h[-1]), state


def frames_per_second(model, x, y, steps: int) -> float:
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step():
        logits, _ = model(x)
        loss = loss_fn(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()

    for _ in range(2):  # warm-up (TorchScript profiling runs)
        step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * x.shape[0] * x.shape[1] / (time.perf_counter() - t0)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--layers", type=int, nargs="+", default=[3, 8])
    ap.add_argument("--cells", type=int, default=256)
    ap.add_argument("--proj", type=int, default=128)
    ap.add_argument("--pdfs", type=int, default=500)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--chunk", type=int, default=20)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = torch.randn(args.batch, args.chunk, 40)
    y = torch.randint(0, args.pdfs, (args.batch, args.chunk))
    print(f"batch {args.batch} x chunk {args.chunk}, cells {args.cells}, proj {args.proj}, threads {torch.get_num_threads()}")
    print(f"{'layers':>6} {'time stack fr/s':>16} {'ltLSTM fr/s':>12} {'ltLSTM/stack':>13}")
    for n in args.layers:
        lt = LayerTrajectoryLSTM(40, args.pdfs, n, args.cells, args.proj, layer_cell_dim=args.proj)
        plain = TimeStackOnly(lt, args.pdfs)
        a = frames_per_second(plain, x, y, args.steps)
        b = frames_per_second(lt, x, y, args.steps)
        print(f"{n:>6} {a:>16.0f} {b:>12.0f} {b / a:>13.2f}")


if __name__ == "__main__":
    main()
