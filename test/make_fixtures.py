#!/usr/bin/env python3
"""Model files for the tests, made here, never downloaded. usage: make_fixtures.py OUT_DIR

- film_same.pt: an extractor as FILM writes it, with padding='same' and the seed's forward
  (every sub-tree stage runs);
- film_interpolator.pt / film_interpolator_fp16.pt: a scripted whole interpolator with FILM's
  layout (extract, predict_flow, fuse; forward(x0, x1, batch_dt)), small flow and fusion parts;
- bad_signature.pt: FILM's weights behind forward(Tensor) -> Tensor;
- no_extract.pt: a module with neither extract nor extract_sublevels;
- saved_after_optimize.pt: an extractor saved after optimize_for_inference.
"""
import os
import sys
from typing import List

import torch
from torch import nn
from torch.nn import functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'models'))
import export  # noqa: E402

CHANNELS, SUB_LEVELS = 16, 3


def same_conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel_size=3, padding='same'), nn.LeakyReLU(0.2))


class SeedSubTree(nn.Module):
    def __init__(self, channels: int, n_layers: int):
        super().__init__()
        convs, cin = [], 3
        for i in range(n_layers):
            convs.append(nn.Sequential(same_conv(cin, channels << i), same_conv(channels << i, channels << i)))
            cin = channels << i
        self.convs = nn.ModuleList(convs)

    def forward(self, image: torch.Tensor, n: int) -> List[torch.Tensor]:
        head, pyramid = image, []
        for i, layer in enumerate(self.convs):
            head = layer(head)
            pyramid.append(head)
            if i < n - 1:
                head = F.avg_pool2d(head, kernel_size=2, stride=2)
        return pyramid


class SeedExtractor(nn.Module):
    def __init__(self, channels: int, sub_levels: int):
        super().__init__()
        self.extract_sublevels = SeedSubTree(channels, sub_levels)
        self.sub_levels = sub_levels

    def forward(self, image_pyramid: List[torch.Tensor]) -> List[torch.Tensor]:
        subs: List[List[torch.Tensor]] = []
        for i in range(len(image_pyramid)):
            subs.append(self.extract_sublevels(image_pyramid[i], min(len(image_pyramid) - i, self.sub_levels)))
        out: List[torch.Tensor] = []
        for i in range(len(image_pyramid)):
            features = subs[i][0]
            for j in range(1, self.sub_levels):
                if j <= i:
                    features = torch.cat([features, subs[i - j][j]], dim=1)
            out.append(features)
        return out


class FlowEstimator(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.convs = nn.Sequential(same_conv(2 * channels, 16), nn.Conv2d(16, 2, kernel_size=1))

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.convs(torch.cat([a, b], dim=1))


class Fusion(nn.Module):
    def __init__(self):
        super().__init__()
        self.output_conv = nn.Conv2d(3 + 3 + 2, 3, kernel_size=3, padding='same')

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output_conv(x)


class Interpolator(nn.Module):
    def __init__(self, channels: int, sub_levels: int, pyramid_levels: int = 4):
        super().__init__()
        self.pyramid_levels = pyramid_levels
        self.extract = SeedExtractor(channels, sub_levels)
        self.predict_flow = FlowEstimator(channels)
        self.fuse = Fusion()

    def forward(self, x0: torch.Tensor, x1: torch.Tensor, batch_dt: torch.Tensor) -> torch.Tensor:
        p0, p1 = [x0], [x1]
        for _ in range(1, self.pyramid_levels):
            p0.append(F.avg_pool2d(p0[-1], kernel_size=2, stride=2))
            p1.append(F.avg_pool2d(p1[-1], kernel_size=2, stride=2))
        f0, f1 = self.extract(p0), self.extract(p1)
        flow = self.predict_flow(f0[0], f1[0]) * batch_dt.view(-1, 1, 1, 1)
        return self.fuse(torch.cat([x0, x1, flow], dim=1))


class BadSignature(nn.Module):
    def __init__(self):
        super().__init__()
        self.extract_sublevels = SeedSubTree(CHANNELS, SUB_LEVELS)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.extract_sublevels(image, 1)[0]


class NoExtract(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Conv2d(3, 4, 3)

    def forward(self, xs: List[torch.Tensor]) -> List[torch.Tensor]:
        return [self.encoder(x) for x in xs]


def main() -> None:
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(2)
    torch.jit.script(SeedExtractor(CHANNELS, SUB_LEVELS).eval()).save(os.path.join(out, 'film_same.pt'))

    torch.manual_seed(3)
    interpolator = Interpolator(CHANNELS, SUB_LEVELS).eval()
    torch.jit.script(interpolator).save(os.path.join(out, 'film_interpolator.pt'))
    torch.jit.script(interpolator.half()).save(os.path.join(out, 'film_interpolator_fp16.pt'))

    torch.jit.script(BadSignature().eval()).save(os.path.join(out, 'bad_signature.pt'))
    torch.jit.script(NoExtract().eval()).save(os.path.join(out, 'no_extract.pt'))

    small = torch.jit.script(export.FeatureExtractor(8, 2).eval())
    torch.jit.optimize_for_inference(torch.jit.freeze(small)).save(os.path.join(out, 'saved_after_optimize.pt'))


if __name__ == '__main__':
    main()
