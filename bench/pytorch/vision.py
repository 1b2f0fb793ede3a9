"""vision.py - the `resnet18_face` and `convnext_face` workloads of BENCH.md in
PyTorch (CPU), for side-by-side comparison with `mytorch bench resnet18_face`
and `mytorch bench convnext_face`: one training step (forward, cross-entropy,
backward, optimizer step) on a fixed random batch of 32 3x112x112 images, 7000
classes; images/s at the median time. The models are torchvision's
(resnet18; convnext with depths (2, 2, 6, 2) and dims (48, 96, 192, 384),
layer scale 1e-6, no stochastic depth), the same layers mytorch builds in
models/vision. Needs python3-torch and python3-torchvision.

    python3 bench/pytorch/vision.py [--iters 5] [--warmup 1] [--threads T] [--out file.json]
"""
import torch
import torch.nn.functional as F
from torchvision.models import resnet18
from torchvision.models.convnext import CNBlockConfig, ConvNeXt

from common import emit, parse_args, result, time_it

BATCH, IMAGE, CLASSES = 32, 112, 7000


def convnext_face():
    dims, depths = (48, 96, 192, 384), (2, 2, 6, 2)
    setting = [CNBlockConfig(d, dims[i + 1] if i + 1 < len(dims) else None, n) for i, (d, n) in enumerate(zip(dims, depths))]
    return ConvNeXt(setting, stochastic_depth_prob=0.0, layer_scale=1e-6, num_classes=CLASSES)


def main():
    args = parse_args(__doc__, iters=5, warmup=1)
    results = []
    for i, name in enumerate(["resnet18_face", "convnext_face"]):
        torch.manual_seed(args.seed + i)
        g = torch.Generator().manual_seed(args.seed + i)
        x = torch.randn(BATCH, 3, IMAGE, IMAGE, generator=g)
        y = torch.randint(0, CLASSES, (BATCH,), generator=g)
        if name == "resnet18_face":
            net = resnet18(num_classes=CLASSES)
            opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
        else:
            net = convnext_face()
            opt = torch.optim.AdamW(net.parameters())
        net.train()

        def step():
            loss = F.cross_entropy(net(x), y)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)

        results.append(result(name, args, time_it(step, args.warmup, args.iters), "images/s", lambda s: BATCH / s))
    emit(results, args)


if __name__ == "__main__":
    main()
