"""layernorm.py - the `layernorm` workload of BENCH.md in PyTorch (CPU), for
side-by-side comparison with `mytorch bench layernorm`: F.layer_norm over the
512 features of 32768 rows (fp32) with weight ones and bias zeros (a fresh
nn.LayerNorm(512)), normal(0,1) inputs:

  layernorm_fwd_bwd  forward + backward from a fixed normal(0,1) dL/dy (dx,
                 dweight, dbias; the gradients set to None before each step)
  layernorm_fwd      the forward alone under torch.no_grad()

GB/s = the least bytes a fused implementation moves (forward: read x, write
y; backward: read x and dy, write dx: 5 x 64 MiB) / the median time.

    python3 bench/pytorch/layernorm.py [--iters 20] [--warmup 3] [--threads T] [--out file.json]
"""
import torch
import torch.nn.functional as F

from common import emit, parse_args, result, time_it

ROWS, FEATURES = 32768, 512


def main():
    args = parse_args(__doc__, iters=20, warmup=3)
    g = torch.Generator().manual_seed(args.seed)
    x = torch.randn(ROWS, FEATURES, generator=g).requires_grad_()
    dy = torch.randn(ROWS, FEATURES, generator=g)
    w = torch.ones(FEATURES, requires_grad=True)
    b = torch.zeros(FEATURES, requires_grad=True)

    def forward_backward():
        x.grad = w.grad = b.grad = None
        F.layer_norm(x, (FEATURES,), w, b, 1e-5).backward(dy)

    def forward():
        with torch.no_grad():
            F.layer_norm(x, (FEATURES,), w, b, 1e-5)

    one_pass = 4.0 * ROWS * FEATURES
    results = []
    for name, step, passes in [("layernorm_fwd_bwd", forward_backward, 5), ("layernorm_fwd", forward, 2)]:
        timing = time_it(step, args.warmup, args.iters)
        results.append(result(name, args, timing, "GB/s", lambda s, p=passes: p * one_pass / s / 1e9))
    emit(results, args)


if __name__ == "__main__":
    main()
