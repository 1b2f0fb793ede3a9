"""conv.py - the `conv3x3` and `dwconv7x7` workloads of BENCH.md in PyTorch
(CPU), for side-by-side comparison with `mytorch bench conv3x3` and
`mytorch bench dwconv7x7`: F.conv2d with bias, forward alone (no grad) and
forward + backward (grad input, weight and bias, from a fixed random output
gradient); GFLOP/s at the median time, counted as mytorch counts them.

    python3 bench/pytorch/conv.py [--iters 10] [--warmup 2] [--threads T] [--out file.json]
"""
import torch
import torch.nn.functional as F

from common import emit, parse_args, result, time_it

SHAPES = [  # name, N, C_in, C_out, H=W, k, pad, groups
    ("conv3x3", 32, 64, 64, 56, 3, 1, 1),
    ("dwconv7x7", 32, 96, 96, 28, 7, 3, 96),
]


def main():
    args = parse_args(__doc__, iters=10, warmup=2)
    results = []
    for i, (name, n, ci, co, hw, k, pad, groups) in enumerate(SHAPES):
        g = torch.Generator().manual_seed(args.seed + i)
        x = torch.randn(n, ci, hw, hw, generator=g, requires_grad=True)
        w = torch.randn(co, ci // groups, k, k, generator=g, requires_grad=True)
        b = torch.randn(co, generator=g, requires_grad=True)
        out = hw + 2 * pad - k + 1
        dy = torch.randn(n, co, out, out, generator=g)
        fwd_flop = 2.0 * n * co * out * out * (ci // groups) * k * k

        def forward():
            with torch.no_grad():
                F.conv2d(x, w, b, padding=pad, groups=groups)

        def forward_backward():
            y = F.conv2d(x, w, b, padding=pad, groups=groups)
            y.backward(dy)
            x.grad = w.grad = b.grad = None

        results.append(result(f"{name}_fwd", args, time_it(forward, args.warmup, args.iters), "GFLOP/s",
                              lambda s: fwd_flop / s / 1e9))
        results.append(result(f"{name}_fwd_bwd", args, time_it(forward_backward, args.warmup, args.iters), "GFLOP/s",
                              lambda s: 3 * fwd_flop / s / 1e9))
    emit(results, args)


if __name__ == "__main__":
    main()
