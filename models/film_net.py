"""A whole FILM interpolator (Reda et al., ECCV 2022), written from the paper and the public
interface of the PyTorch port (dajes/frame-interpolation-pytorch): the same state_dict names and
shapes, so its weights load one to one, and the same forward(x0, x1, batch_dt) -> Tensor with
batch_dt of shape [n, 1].

The network, for frames padded to a multiple of 2^(pyramid_levels - 1):
1. an image pyramid per frame (2x2 average pooling);
2. the cascaded feature pyramid (extractor.FeatureExtractor, weights shared by both frames);
3. residual flow, coarse to fine, both ways: at each level the flow so far is upsampled (x2),
   frame b's features are backward-warped by it, and a small CNN predicts a correction from
   (features a, warped b); the coarse levels share one predictor, the finest `sub_levels - 1`
   levels have their own;
4. the flows scaled to time t (t * backward, (1 - t) * forward), both frames' images and features
   warped to t, and a U-Net-like decoder (fusion) over the finest fusion levels giving RGB.
The output is not clamped; callers clamp to [0, 1].
"""
from typing import List, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from extractor import FeatureExtractor


def conv(cin: int, cout: int, size: int, act: bool = True) -> nn.Sequential:
    # Every convolution sits at index 0 of a Sequential: the port's names end in `.0.weight`.
    # 3x3 and 1x1 keep the size (integer padding, which optimize_for_inference and ONNX take);
    # FILM's 2x2 "resize convolution" is padded right and bottom by the caller.
    layers: List[nn.Module] = [nn.Conv2d(cin, cout, kernel_size=size, padding=size // 2 if size % 2 else 0)]
    if act:
        layers.append(nn.LeakyReLU(0.2))
    return nn.Sequential(*layers)


def feature_widths(channels: int, sub_levels: int, levels: int) -> List[int]:
    """Channels of the cascaded feature pyramid per level: stage j adds channels << j."""
    return [sum(channels << j for j in range(min(i, sub_levels - 1) + 1)) for i in range(levels)]


def backward_warp(image: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """out[y, x] = image[y + flow_y, x + flow_x] (flow channels: dx, dy), bilinear, edges repeated,
    as TensorFlow Addons' dense_image_warp reads with the opposite sign convention."""
    n, _, h, w = flow.shape
    # grid_sample (align_corners=False) puts pixel i's centre at (2i + 1) / size - 1
    xs = (2 * torch.arange(w, dtype=flow.dtype, device=flow.device) + 1) / w - 1
    ys = (2 * torch.arange(h, dtype=flow.dtype, device=flow.device) + 1) / h - 1
    gx = xs.view(1, 1, w) + flow[:, 0] * (2.0 / w)
    gy = ys.view(1, h, 1) + flow[:, 1] * (2.0 / h)
    return F.grid_sample(image, torch.stack([gx, gy], dim=3), mode='bilinear', padding_mode='border',
                         align_corners=False)


def image_pyramid(image: torch.Tensor, levels: int) -> List[torch.Tensor]:
    """The frame and its 2x2 average poolings, finest first."""
    pyramid = [image]
    for _ in range(1, levels):
        pyramid.append(F.avg_pool2d(pyramid[-1], kernel_size=2, stride=2))
    return pyramid


def upsample_flow(flow: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A flow at twice the resolution: twice the vectors, bilinearly resized."""
    return F.interpolate(2 * flow, size=(like.shape[2], like.shape[3]), mode='bilinear', align_corners=False)


class FlowPredictor(nn.Module):
    """Residual flow from (features a, warped features b): `convs` 3x3 convolutions of `filters`,
    a 1x1 to filters / 2, and a 1x1 to the two flow channels without activation."""

    def __init__(self, cin: int, convs: int, filters: int):
        super().__init__()
        layers: List[nn.Module] = []
        for _ in range(convs):
            layers.append(conv(cin, filters, 3))
            cin = filters
        layers.append(conv(cin, filters // 2, 1))
        layers.append(conv(filters // 2, 2, 1, act=False))
        self._convs = nn.ModuleList(layers)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        x = torch.cat([a, b], dim=1)
        for layer in self._convs:
            x = layer(x)
        return x


class PyramidFlow(nn.Module):
    """Residual flows, finest first; the coarsest entry is the flow itself."""

    def __init__(self, widths: List[int], convs: Sequence[int], filters: Sequence[int]):
        super().__init__()
        k = len(convs)
        # The port's layout: `_predictor` for every level from k - 1 down to the coarsest (their
        # features all have the same width), `_predictors[m]` for level k - 2 - m.
        self._predictor = FlowPredictor(2 * widths[k - 1], convs[k - 1], filters[k - 1])
        self._predictors = nn.ModuleList(
            [FlowPredictor(2 * widths[i], convs[i], filters[i]) for i in range(k - 2, -1, -1)])

    def forward(self, a: List[torch.Tensor], b: List[torch.Tensor]) -> List[torch.Tensor]:
        levels = len(a)
        flow = self._predictor(a[levels - 1], b[levels - 1])
        residuals: List[torch.Tensor] = [flow]
        specific = len(self._predictors)
        for i in range(levels - 2, specific - 1, -1):
            flow = upsample_flow(flow, a[i])
            residual = self._predictor(a[i], backward_warp(b[i], flow))
            residuals.insert(0, residual)
            flow = flow + residual
        for m, predictor in enumerate(self._predictors):
            i = specific - 1 - m
            flow = upsample_flow(flow, a[i])
            residual = predictor(a[i], backward_warp(b[i], flow))
            residuals.insert(0, residual)
            flow = flow + residual
        return residuals


def accumulate(residuals: List[torch.Tensor]) -> List[torch.Tensor]:
    """Residual flows (finest first) to flows: each level adds the upsampled coarser flow."""
    flow = residuals[-1]
    flows: List[torch.Tensor] = [flow]
    for i in range(len(residuals) - 2, -1, -1):
        flow = residuals[i] + upsample_flow(flow, residuals[i])
        flows.insert(0, flow)
    return flows


class Fusion(nn.Module):
    """The decoder: from the coarsest aligned level up, each finer level takes the coarser result
    (nearest x2, a 2x2 convolution), concatenates its aligned inputs, and applies two 3x3s."""

    def __init__(self, aligned: List[int], channels: int, specialized: int):
        super().__init__()
        steps = len(aligned) - 1
        self.output_conv = nn.Conv2d(channels, 3, kernel_size=1)
        stages = []
        cin = aligned[steps]
        for i in range(steps - 1, -1, -1):  # coarse to fine: convs[0] makes level steps - 1
            width = channels << min(i, specialized)
            stages.append(nn.ModuleList([conv(cin, width, 2, act=False), conv(aligned[i] + width, width, 3),
                                         conv(width, width, 3)]))
            cin = width
        self.convs = nn.ModuleList(stages)

    def forward(self, aligned: List[torch.Tensor]) -> torch.Tensor:
        x = aligned[-1]
        steps = len(self.convs)
        for k, stage in enumerate(self.convs):
            level = aligned[steps - 1 - k]
            x = F.interpolate(x, size=(level.shape[2], level.shape[3]), mode='nearest')
            x = stage[0](F.pad(x, (0, 1, 0, 1)))
            x = stage[2](stage[1](torch.cat([level, x], dim=1)))
        return self.output_conv(x)


class FilmNet(nn.Module):
    def __init__(self, channels: int = 64, sub_levels: int = 4, pyramid_levels: int = 7,
                 flow_convs: Sequence[int] = (3, 3, 3, 3), flow_filters: Sequence[int] = (32, 64, 128, 256),
                 specialized_levels: int = 3):
        super().__init__()
        if len(flow_convs) != sub_levels or len(flow_filters) != sub_levels:
            raise ValueError(f'one flow predictor per sub-level: {sub_levels} convs and filters')
        self.pyramid_levels = pyramid_levels
        self.fusion_levels = sub_levels + 1
        widths = feature_widths(channels, sub_levels, pyramid_levels)
        self.extract = FeatureExtractor(channels, sub_levels)
        self.predict_flow = PyramidFlow(widths, flow_convs, flow_filters)
        # per fusion level: both warped images and features, then both flows
        self.fuse = Fusion([2 * (3 + widths[i] + 2) for i in range(self.fusion_levels)], channels,
                           specialized_levels)

    def forward(self, x0: torch.Tensor, x1: torch.Tensor, batch_dt: torch.Tensor) -> torch.Tensor:
        images0, images1 = image_pyramid(x0, self.pyramid_levels), image_pyramid(x1, self.pyramid_levels)
        feats0, feats1 = self.extract(images0), self.extract(images1)
        forward_flows = accumulate(self.predict_flow(feats0, feats1))
        backward_flows = accumulate(self.predict_flow(feats1, feats0))
        # batch_dt is [n, 1], as the port and Google's model take it: one time per pair
        t = batch_dt.unsqueeze(-1).unsqueeze(-1)
        aligned: List[torch.Tensor] = []
        for i in range(self.fusion_levels):
            to0 = backward_flows[i] * t  # reads frame 0 at time t
            to1 = forward_flows[i] * (1 - t)  # reads frame 1 at time t
            warped0 = backward_warp(torch.cat([images0[i], feats0[i]], dim=1), to0)
            warped1 = backward_warp(torch.cat([images1[i], feats1[i]], dim=1), to1)
            aligned.append(torch.cat([warped0, warped1, to0, to1], dim=1))
        return self.fuse(aligned)
