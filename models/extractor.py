"""FILM's cascaded feature extractor (Trinidad et al., 2019, as FILM uses it), in the layout of FILM's
checkpoints: extract_sublevels.convs.{j}.{k}.0.weight / .bias. Convolutions use integer padding:
torch 1.13's optimize_for_inference and ONNX export both reject padding='same'.
"""
from typing import List

import torch
from torch import nn
from torch.nn import functional as F


def conv_block(cin: int, cout: int) -> nn.Sequential:
    # FILM's util.Conv2d is Sequential(conv, LeakyReLU(0.2)); keep the nesting for the names.
    return nn.Sequential(nn.Conv2d(cin, cout, kernel_size=3, padding=1), nn.LeakyReLU(0.2))


class SubTree(nn.Module):
    def __init__(self, channels: int, sub_levels: int):
        super().__init__()
        stages = []
        cin = 3
        for j in range(sub_levels):
            width = channels << j
            stages.append(nn.Sequential(conv_block(cin, width), conv_block(width, width)))
            cin = width
        self.convs = nn.ModuleList(stages)

    def forward(self, image: torch.Tensor, n: int) -> List[torch.Tensor]:
        # Only the first n stages feed the cascade; FILM runs all of them and drops the rest.
        out: List[torch.Tensor] = []
        head = image
        for j, stage in enumerate(self.convs):
            if j < n:
                if j > 0:
                    head = F.avg_pool2d(head, kernel_size=2, stride=2)
                head = stage(head)
                out.append(head)
        return out


class FeatureExtractor(nn.Module):
    def __init__(self, channels: int = 64, sub_levels: int = 4):
        super().__init__()
        self.extract_sublevels = SubTree(channels, sub_levels)
        self.sub_levels = sub_levels

    def forward(self, image_pyramid: List[torch.Tensor]) -> List[torch.Tensor]:
        levels = len(image_pyramid)
        subs: List[List[torch.Tensor]] = []
        for i in range(levels):
            subs.append(self.extract_sublevels(image_pyramid[i], min(levels - i, self.sub_levels)))
        feats: List[torch.Tensor] = []
        for i in range(levels):
            parts = [subs[i - j][j] for j in range(min(i, self.sub_levels - 1) + 1)]
            feats.append(torch.cat(parts, dim=1))
        return feats
