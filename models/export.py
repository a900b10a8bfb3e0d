#!/usr/bin/env python3
"""Writes FILM's cascaded feature extractor as TorchScript (or ONNX).

Run with Debian's torch:  /usr/bin/python3 models/export.py --out models/film_extractor.pt
  --from FILE   take the weights of a FILM file: a whole-interpolator TorchScript (its `extract`),
                an extractor TorchScript, or a state_dict (names with or without `extract.`)
  --onnx        write ONNX instead (7 levels, dynamic batch and size), for onnxruntime-node

Tensor names follow FILM's checkpoints (extract_sublevels.convs.{j}.{k}.0.weight/bias), so real
weights map one to one. Convolutions use integer padding: torch 1.13's optimize_for_inference and
ONNX export both reject padding='same'.

A TorchScript file carries film_features.json (torch.jit.save's extra files) saying where its
weights came from, e.g. {"weights": "random, seed 0", ...}; the addon reports it as info.weights.
"""
import argparse
import json
import os
import re
from typing import Dict, List, Tuple

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


CONV = re.compile(r'^(?:extract\.)?(extract_sublevels\.convs\.(\d+)\.([01])\.0\.(?:weight|bias))$')


def read_weights(path: str) -> Tuple[Dict[str, torch.Tensor], int, int]:
    """FILM extractor weights from any FILM file, as float32, with the bare names."""
    try:
        module = torch.jit.load(path, map_location='cpu')
        if hasattr(module, 'extract'):
            module = module.extract
        state = module.state_dict()
    except RuntimeError:
        state = torch.load(path, map_location='cpu')
        if isinstance(state, dict) and isinstance(state.get('state_dict'), dict):
            state = state['state_dict']
    if not isinstance(state, dict):
        raise SystemExit(f'{path}: neither TorchScript nor a state_dict')
    weights = {}
    for name, tensor in state.items():
        m = CONV.match(name)
        if m:
            weights[m[1]] = tensor.float()
    if not weights:
        raise SystemExit(f'{path}: no extract_sublevels.convs.*.weight tensors')
    sub_levels = 1 + max(int(CONV.match(n)[2]) for n in weights)
    channels = weights['extract_sublevels.convs.0.0.0.weight'].shape[0]
    return weights, channels, sub_levels


class OnnxPyramid(nn.Module):
    """ONNX takes tensors, not a list: one input per level."""

    def __init__(self, extractor: FeatureExtractor):
        super().__init__()
        self.extractor = extractor

    def forward(self, *levels: torch.Tensor) -> List[torch.Tensor]:
        return self.extractor(list(levels))


def export_onnx(model: FeatureExtractor, out: str, levels: int = 7) -> None:
    size = 2 ** (levels - 1)
    pyramid = tuple(torch.rand(1, 3, size >> i, size >> i) for i in range(levels))
    inputs = [f'level{i}' for i in range(levels)]
    outputs = [f'features{i}' for i in range(levels)]
    axes = {name: {0: 'n', 2: f'h{i}', 3: f'w{i}'}
            for i in range(levels) for name in (inputs[i], outputs[i])}
    torch.onnx.export(OnnxPyramid(model), pyramid, out, input_names=inputs, output_names=outputs,
                      dynamic_axes=axes, opset_version=13)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--channels', type=int, default=64, help='base width C (default 64)')
    p.add_argument('--sub-levels', type=int, default=4, help='stages per sub-tree S (default 4)')
    p.add_argument('--seed', type=int, default=0, help='weight seed (default 0)')
    p.add_argument('--from', dest='source', help='copy the weights of this FILM file')
    p.add_argument('--onnx', action='store_true', help='write ONNX (7 levels) instead of TorchScript')
    p.add_argument('--out', required=True, help='file to write')
    args = p.parse_args()
    if args.channels < 1 or args.sub_levels < 1:
        p.error('--channels and --sub-levels must be positive')

    if args.source:
        weights, args.channels, args.sub_levels = read_weights(args.source)
        model = FeatureExtractor(args.channels, args.sub_levels).eval()
        model.load_state_dict(weights, strict=True)
        origin = f'from {os.path.basename(args.source)}'
    else:
        torch.manual_seed(args.seed)
        model = FeatureExtractor(args.channels, args.sub_levels).eval()
        origin = f'random, seed {args.seed}'
    if args.onnx:
        export_onnx(model, args.out)
    else:
        metadata = {'weights': origin, 'channels': args.channels, 'subLevels': args.sub_levels,
                    'torch': torch.__version__, 'exporter': 'film-features models/export.py'}
        torch.jit.save(torch.jit.script(model), args.out,
                       _extra_files={'film_features.json': json.dumps(metadata, ensure_ascii=False)})
    n = sum(t.numel() for t in model.parameters())
    print(f'wrote {args.out}: C={args.channels} S={args.sub_levels}, weights {origin}, {n} parameters')


if __name__ == '__main__':
    main()
