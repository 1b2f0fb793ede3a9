"""gemm.py - the `gemm` workload of BENCH.md in PyTorch (CPU), for side-by-side
comparison with `mytorch bench gemm`: C = A.B (fp32) for M=N=K=1024 and
M=1024, K=495, N=1024, a new output each step; GFLOP/s at the median time.

    python3 bench/pytorch/gemm.py [--iters 20] [--warmup 3] [--threads T] [--out file.json]
"""
import torch

from common import emit, parse_args, result, time_it


def main():
    args = parse_args(__doc__, iters=20, warmup=3)
    results = []
    for i, (m, n, k) in enumerate([(1024, 1024, 1024), (1024, 1024, 495)]):
        g = torch.Generator().manual_seed(args.seed + i)
        a = torch.randn(m, k, generator=g, dtype=torch.float32)
        b = torch.randn(k, n, generator=g, dtype=torch.float32)
        with torch.no_grad():
            timing = time_it(lambda: torch.matmul(a, b), args.warmup, args.iters)
        flop = 2.0 * m * n * k
        results.append(result(f"gemm_m{m}_n{n}_k{k}", args, timing, "GFLOP/s", lambda s: flop / s / 1e9))
    emit(results, args)


if __name__ == "__main__":
    main()
