"""mlp_speech.py - the `mlp_speech` workload of BENCH.md in PyTorch (CPU), for
side-by-side comparison with `mytorch bench mlp_speech`: one training step
(forward + backward + AdamW update) of Linear 495-1024-1024-512-43, each hidden
Linear followed by BatchNorm1d, GELU, Dropout(0.2); cross-entropy;
AdamW(lr 1e-3, weight decay 0.01); batch 1024 of normal(0,1) frames, labels
uniform over 43 classes; samples/s at the median time.

    python3 bench/pytorch/mlp_speech.py [--iters 10] [--warmup 2] [--threads T] [--out file.json]
"""
import torch
from torch import nn

from common import emit, parse_args, result, time_it

BATCH, INPUT, CLASSES = 1024, 495, 43


def main():
    args = parse_args(__doc__, iters=10, warmup=2)
    torch.manual_seed(args.seed)
    g = torch.Generator().manual_seed(args.seed)
    x = torch.randn(BATCH, INPUT, generator=g)
    y = torch.randint(0, CLASSES, (BATCH,), generator=g)
    layers = []
    for fan_in, fan_out in [(INPUT, 1024), (1024, 1024), (1024, 512)]:
        layers += [nn.Linear(fan_in, fan_out), nn.BatchNorm1d(fan_out), nn.GELU(), nn.Dropout(0.2)]
    net = nn.Sequential(*layers, nn.Linear(512, CLASSES)).train()
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=0.01)
    loss_fn = nn.CrossEntropyLoss()

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(net(x), y)
        loss.backward()
        opt.step()

    timing = time_it(step, args.warmup, args.iters)
    emit([result("mlp_speech", args, timing, "samples/s", lambda s: BATCH / s)], args)


if __name__ == "__main__":
    main()
