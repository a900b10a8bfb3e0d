#!/usr/bin/env python3
"""Model files for the tests, made here, never downloaded. usage: make_fixtures.py OUT_DIR

- film_same.pt: an extractor as FILM writes it, with padding='same' and the seed's forward
  (every sub-tree stage runs);
- film_interpolator.pt / film_interpolator_fp16.pt: a scripted whole interpolator with FILM's
  layout (extract, predict_flow, fuse; forward(x0, x1, batch_dt)), small flow and fusion parts;
- film_net_tiny.pt / film_net_tiny_fp16.pt: a fuller interpolator with FILM's structure: image
  pyramids, the cascaded extractor, residual flow estimation coarse to fine with backward warping,
  flows scaled by batch_dt and 1 - batch_dt, warped image+feature pyramids, and a U-Net-like fusion
  whose output is the time-weighted blend of the two warped images plus a learned residual (so
  outputs mostly stay in [0, 1]). batch_dt is [N, 1], as Google's FILM and the PyTorch port (since
  v1.0.2) document it: a pyramid level is multiplied by `batch_dt[..., None, None]`;
- film_net_tiny_old.pt: the same network and weights in the older convention: batch_dt [N, 1, 1, 1],
  multiplied as it is (the port before v1.0.2);
- dt_flat.pt: a forward that takes batch_dt as [N] only, so neither convention gives a frame;
- fixed_size.pt: a forward that runs on 64x64 frames only (a learned 64x64 offset), so it loads
  and then fails inside its TorchScript code on any other size;
- fixed_size_extractor.pt: the same for an extractor (FILM's names; a 64x64 offset on level 0);
- tuple_forward.pt: forward(x0, x1, batch_dt) that returns a tuple, not a Tensor;
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
from film_net import accumulate, image_pyramid, upsample_flow  # noqa: E402

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


class FixedSizeExtractor(nn.Module):
    """FILM's extractor plus a learned 64x64 offset on level 0: loads (checked on 64x64), fails on other sizes."""

    def __init__(self, channels: int, sub_levels: int):
        super().__init__()
        self.film = SeedExtractor(channels, sub_levels)
        self.extract_sublevels = self.film.extract_sublevels  # FILM's names, as the addon looks for them
        self.offset = nn.Parameter(torch.full((1, channels, 64, 64), 0.1))  # not FILM: the oneDNN engine declines it

    def forward(self, image_pyramid: List[torch.Tensor]) -> List[torch.Tensor]:
        out = self.film(image_pyramid)
        out[0] = out[0] + self.offset
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
        p0, p1 = image_pyramid(x0, self.pyramid_levels), image_pyramid(x1, self.pyramid_levels)
        f0, f1 = self.extract(p0), self.extract(p1)
        flow = self.predict_flow(f0[0], f1[0]) * batch_dt[..., None, None]
        return self.fuse(torch.cat([x0, x1, flow], dim=1))


def warp(image: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Backward warp: output[y, x] = image[y + flow_y, x + flow_x], bilinear, borders repeated."""
    n, _, h, w = flow.shape
    ys = torch.arange(h, dtype=flow.dtype, device=flow.device).view(1, h, 1).expand(n, h, w)
    xs = torch.arange(w, dtype=flow.dtype, device=flow.device).view(1, 1, w).expand(n, h, w)
    # grid_sample's coordinates with align_corners=False: pixel centres at (2i + 1) / size - 1
    gx = (2 * (xs + flow[:, 0]) + 1) / w - 1
    gy = (2 * (ys + flow[:, 1]) + 1) / h - 1
    grid = torch.stack([gx, gy], dim=3)
    return F.grid_sample(image, grid, mode='bilinear', padding_mode='border', align_corners=False)


class TinyFlowEstimator(nn.Module):
    """Residual flow per level, coarsest first; each finer level warps b by the upsampled flow."""

    def __init__(self, widths: List[int]):
        super().__init__()
        self.predictors = nn.ModuleList([
            nn.Sequential(same_conv(2 * c, 8), nn.Conv2d(8, 2, kernel_size=3, padding=1)) for c in widths])

    def forward(self, a: List[torch.Tensor], b: List[torch.Tensor]) -> List[torch.Tensor]:
        levels = len(a)
        flow = torch.zeros_like(a[levels - 1][:, :2])
        residuals: List[torch.Tensor] = []
        for i in range(levels - 1, -1, -1):
            if i < levels - 1:
                flow = upsample_flow(flow, a[i])  # 2 * interpolate(flow), bit for bit
            for j, predictor in enumerate(self.predictors):
                if j == i:
                    residual = predictor(torch.cat([a[i], warp(b[i], flow)], dim=1))
                    residuals.insert(0, residual)
                    flow = flow + residual
        return residuals


class TinyFusion(nn.Module):
    """Decoder from the coarsest aligned level to the finest; predicts a residual on the blend."""

    def __init__(self, widths: List[int]):
        super().__init__()
        self.convs = nn.ModuleList(
            [same_conv(widths[i] + (8 if i < len(widths) - 1 else 0), 8) for i in range(len(widths))])
        self.output_conv = nn.Conv2d(8, 3, kernel_size=1)

    def forward(self, aligned: List[torch.Tensor]) -> torch.Tensor:
        levels = len(aligned)
        x = aligned[levels - 1]
        for i in range(levels - 1, -1, -1):
            for j, conv in enumerate(self.convs):
                if j == i:
                    if i < levels - 1:
                        up = F.interpolate(x, size=(aligned[i].shape[2], aligned[i].shape[3]), mode='nearest')
                        x = conv(torch.cat([aligned[i], up], dim=1))
                    else:
                        x = conv(aligned[i])
        return self.output_conv(x)


class TinyFilm(nn.Module):
    def __init__(self, channels: int = 8, sub_levels: int = 3, pyramid_levels: int = 4, fusion_levels: int = 3,
                 dt_4d: bool = False):
        super().__init__()
        self.dt_4d = dt_4d  # batch_dt [N, 1, 1, 1] (older files) instead of [N, 1]
        self.pyramid_levels = pyramid_levels
        self.fusion_pyramid_levels = fusion_levels
        self.extract = SeedExtractor(channels, sub_levels)
        widths = [sum(channels << j for j in range(min(i, sub_levels - 1) + 1)) for i in range(pyramid_levels)]
        self.predict_flow = TinyFlowEstimator(widths)
        # per level: both warped images and features, both flows
        self.fuse = TinyFusion([2 * (3 + widths[i]) + 4 for i in range(fusion_levels)])

    def forward(self, x0: torch.Tensor, x1: torch.Tensor, batch_dt: torch.Tensor) -> torch.Tensor:
        p0, p1 = image_pyramid(x0, self.pyramid_levels), image_pyramid(x1, self.pyramid_levels)
        f0, f1 = self.extract(p0), self.extract(p1)
        forward_flow = accumulate(self.predict_flow(f0, f1))[:self.fusion_pyramid_levels]
        backward_flow = accumulate(self.predict_flow(f1, f0))[:self.fusion_pyramid_levels]
        t = batch_dt if self.dt_4d else batch_dt[..., None, None]
        aligned: List[torch.Tensor] = []
        for i in range(self.fusion_pyramid_levels):
            # to time t: read image 0 along t times the backward flow, image 1 along (1 - t) times the forward
            to0 = backward_flow[i] * t
            to1 = forward_flow[i] * (1 - t)
            w0 = warp(torch.cat([p0[i], f0[i]], dim=1), to0)
            w1 = warp(torch.cat([p1[i], f1[i]], dim=1), to1)
            aligned.append(torch.cat([w0, w1, to0, to1], dim=1))
        w0_image = aligned[0][:, :3]
        w1_image = aligned[0][:, 3 + f0[0].shape[1]:6 + f0[0].shape[1]]
        blend = (1 - t) * w0_image + t * w1_image
        return blend + 0.05 * torch.tanh(self.fuse(aligned))


class FlatDt(nn.Module):
    """A blend whose batch_dt must be [N]: [N, 1] and [N, 1, 1, 1] both give frames of another rank."""

    def __init__(self):
        super().__init__()
        self.extract = SeedExtractor(CHANNELS, SUB_LEVELS)

    def forward(self, x0: torch.Tensor, x1: torch.Tensor, batch_dt: torch.Tensor) -> torch.Tensor:
        t = batch_dt[:, None, None, None]
        return (1 - t) * x0 + t * x1


class FixedSize(nn.Module):
    """A blend plus a learned 64x64 offset: runs on 64x64 frames, fails inside on any other size."""

    def __init__(self):
        super().__init__()
        self.extract = SeedExtractor(CHANNELS, SUB_LEVELS)
        self.offset = nn.Parameter(torch.zeros(1, 3, 64, 64))

    def forward(self, x0: torch.Tensor, x1: torch.Tensor, batch_dt: torch.Tensor) -> torch.Tensor:
        t = batch_dt[..., None, None]
        return (1 - t) * x0 + t * x1 + self.offset


class TupleForward(nn.Module):
    def __init__(self):
        super().__init__()
        self.extract = SeedExtractor(CHANNELS, SUB_LEVELS)

    def forward(self, x0: torch.Tensor, x1: torch.Tensor, batch_dt: torch.Tensor):
        return x0 * batch_dt, x1


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

    torch.manual_seed(4)
    tiny = TinyFilm().eval()
    for p in tiny.predict_flow.parameters():
        p.data.mul_(4)  # flows of a few pixels, so that warping matters
    torch.jit.script(tiny).save(os.path.join(out, 'film_net_tiny.pt'))
    old = TinyFilm(dt_4d=True).eval()
    old.load_state_dict(tiny.state_dict())
    torch.jit.script(old).save(os.path.join(out, 'film_net_tiny_old.pt'))
    torch.jit.script(tiny.half()).save(os.path.join(out, 'film_net_tiny_fp16.pt'))
    torch.jit.script(FlatDt().eval()).save(os.path.join(out, 'dt_flat.pt'))
    torch.jit.script(FixedSize().eval()).save(os.path.join(out, 'fixed_size.pt'))
    torch.jit.script(FixedSizeExtractor(CHANNELS, SUB_LEVELS).eval()).save(os.path.join(out, 'fixed_size_extractor.pt'))
    torch.jit.script(TupleForward().eval()).save(os.path.join(out, 'tuple_forward.pt'))

    torch.jit.script(BadSignature().eval()).save(os.path.join(out, 'bad_signature.pt'))
    torch.jit.script(NoExtract().eval()).save(os.path.join(out, 'no_extract.pt'))

    small = torch.jit.script(export.FeatureExtractor(8, 2).eval())
    torch.jit.optimize_for_inference(torch.jit.freeze(small)).save(os.path.join(out, 'saved_after_optimize.pt'))


if __name__ == '__main__':
    main()
