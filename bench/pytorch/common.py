"""common.py - timing, statistics and JSON output shared by the PyTorch peers
of mytorch's benchmarks (bench/pytorch/*.py). Same fields as `mytorch bench`.
Never run by the build or the tests."""
import argparse
import json
import resource
import statistics
import sys
import time

import torch


def parse_args(description, iters, warmup):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--iters", type=int, default=iters, help=f"timed iterations (default {iters})")
    p.add_argument("--warmup", type=int, default=warmup, help=f"untimed warm-up iterations (default {warmup})")
    p.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (default: as configured)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random inputs (default 0)")
    p.add_argument("--out", help="also write the JSON to this file")
    a = p.parse_args()
    if a.iters < 1 or a.warmup < 0:
        p.error("need --iters >= 1 and --warmup >= 0")
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    return a


def time_it(step, warmup, iters):
    for _ in range(warmup):
        step()
    ms = []
    for _ in range(iters):
        t0 = time.perf_counter()
        step()
        ms.append(1e3 * (time.perf_counter() - t0))
    return statistics.median(ms), min(ms), max(ms)


def result(name, args, timing, metric, value_of_seconds):
    median, lo, hi = timing
    return {
        "name": name, "impl": "pytorch", "device": "cpu",
        "threads": torch.get_num_threads(), "iters": args.iters, "warmup": args.warmup,
        "median_ms": round(median, 4), "min_ms": round(lo, 4), "max_ms": round(hi, 4),
        "metric": metric, "value": round(value_of_seconds(median * 1e-3), 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1),
    }


def emit(results, args):
    text = "[\n" + ",\n".join("  " + json.dumps(r) for r in results) + "\n]\n"
    sys.stdout.write(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
