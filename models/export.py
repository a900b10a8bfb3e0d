#!/usr/bin/env python3
"""Writes FILM's cascaded feature extractor, or a whole FILM interpolator, as TorchScript.

Run with Debian's torch:  /usr/bin/python3 models/export.py --out models/film_extractor.pt
  --from FILE   take the weights of a FILM file: a whole-interpolator TorchScript (its `extract`),
                an extractor TorchScript, or a state_dict (names with or without `extract.`)
  --onnx        write ONNX instead (7 levels, dynamic batch and size), for onnxruntime-node

  /usr/bin/python3 models/export.py --interpolator film_net.pt [--from STATE_DICT.pt]
                a whole interpolator (models/film_net.py: forward(x0, x1, batch_dt [n, 1])) in the
                layout of the PyTorch port of FILM (dajes/frame-interpolation-pytorch): random
                weights (--seed) by default, about 138 MB at the default widths; --from takes that
                port's state_dict or TorchScript file (e.g. its film_net_fp32.pt) and copies them.

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

import film_net
from extractor import FeatureExtractor


CONV = re.compile(r'^(?:extract\.)?(extract_sublevels\.convs\.(\d+)\.([01])\.0\.(?:weight|bias))$')


def read_weights(path: str) -> Tuple[Dict[str, torch.Tensor], int, int]:
    """FILM extractor weights from any FILM file, as float32, with the bare names."""
    weights = {}
    for name, tensor in read_state(path).items():
        m = CONV.match(name)
        if m:
            weights[m[1]] = tensor
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


def read_state(path: str) -> Dict[str, torch.Tensor]:
    """Every tensor of a TorchScript file or a state_dict, as float32."""
    try:
        state = torch.jit.load(path, map_location='cpu').state_dict()
    except RuntimeError:
        state = torch.load(path, map_location='cpu')
        if isinstance(state, dict) and isinstance(state.get('state_dict'), dict):
            state = state['state_dict']
    if not isinstance(state, dict):
        raise SystemExit(f'{path}: neither TorchScript nor a state_dict')
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}


def interpolator_shape(state: Dict[str, torch.Tensor], path: str) -> dict:
    """FilmNet's arguments read off the shapes of a state_dict in the port's layout."""
    def weight(name: str) -> torch.Tensor:
        if name not in state:
            raise SystemExit(f'{path}: not a FILM interpolator in the layout of the PyTorch port: no {name}')
        return state[name]

    def predictor(prefix: str):
        convs = sum(1 for k in state if re.fullmatch(re.escape(prefix) + r'\._convs\.\d+\.0\.weight', k))
        return convs - 2, weight(f'{prefix}._convs.0.0.weight').shape[0]

    channels = weight('extract.extract_sublevels.convs.0.0.0.weight').shape[0]
    sub_levels = sum(1 for k in state if re.fullmatch(r'extract\.extract_sublevels\.convs\.\d+\.0\.0\.weight', k))
    shapes = [predictor(f'predict_flow._predictors.{m}') for m in range(sub_levels - 2, -1, -1)]
    shapes.append(predictor('predict_flow._predictor'))
    widest = weight('fuse.convs.0.0.0.weight').shape[0]
    return {'channels': channels, 'sub_levels': sub_levels, 'flow_convs': [c for c, _ in shapes],
            'flow_filters': [f for _, f in shapes], 'specialized_levels': (widest // channels).bit_length() - 1}


def integers(text: str) -> List[int]:
    return [int(v) for v in text.split(',')]


def export_interpolator(args) -> None:
    if args.source:
        state = read_state(args.source)
        shape = interpolator_shape(state, args.source)
        model = film_net.FilmNet(**shape).eval()
        missing, unexpected = model.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise SystemExit(f'{args.source}: not the layout of the PyTorch port of FILM: missing {missing[:5]}, '
                             f'unexpected {unexpected[:5]}')
        origin = f'from {os.path.basename(args.source)}'
    else:
        torch.manual_seed(args.seed)
        shape = {'channels': args.channels, 'sub_levels': args.sub_levels, 'flow_convs': args.flow_convs,
                 'flow_filters': args.flow_filters, 'specialized_levels': 3}
        model = film_net.FilmNet(**shape).eval()
        origin = f'random, seed {args.seed}'
    metadata = {'weights': origin, 'channels': shape['channels'], 'subLevels': shape['sub_levels'],
                'flowConvs': list(shape['flow_convs']), 'flowFilters': list(shape['flow_filters']),
                'batchDt': '[n, 1]', 'torch': torch.__version__, 'exporter': 'film-features models/export.py'}
    torch.jit.save(torch.jit.script(model), args.interpolator,
                   _extra_files={'film_features.json': json.dumps(metadata, ensure_ascii=False)})
    n = sum(t.numel() for t in model.parameters())
    print(f'wrote {args.interpolator}: whole FILM interpolator, C={shape["channels"]}, weights {origin}, {n} parameters')


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--channels', type=int, default=64, help='base width C (default 64)')
    p.add_argument('--sub-levels', type=int, default=4, help='stages per sub-tree S (default 4)')
    p.add_argument('--seed', type=int, default=0, help='weight seed (default 0)')
    p.add_argument('--from', dest='source', help='copy the weights of this FILM file')
    p.add_argument('--onnx', action='store_true', help='write ONNX (7 levels) instead of TorchScript')
    p.add_argument('--out', help='the extractor file to write')
    p.add_argument('--interpolator', metavar='OUT', help='write a whole FILM interpolator to OUT instead')
    p.add_argument('--flow-convs', type=integers, default=[3, 3, 3, 3],
                   help='interpolator: 3x3 convolutions per flow predictor, finest first (default 3,3,3,3)')
    p.add_argument('--flow-filters', type=integers, default=[32, 64, 128, 256],
                   help='interpolator: width of each flow predictor, finest first (default 32,64,128,256)')
    args = p.parse_args()
    if args.channels < 1 or args.sub_levels < 1:
        p.error('--channels and --sub-levels must be positive')
    if bool(args.out) == bool(args.interpolator):
        p.error('give one of --out (an extractor) and --interpolator (a whole interpolator)')
    if args.interpolator:
        if args.onnx:
            p.error('--onnx writes extractors only')
        if len(args.flow_convs) != args.sub_levels or len(args.flow_filters) != args.sub_levels:
            p.error('--flow-convs and --flow-filters need one value per sub-level (--sub-levels)')
        if min(args.flow_convs) < 0 or min(args.flow_filters) < 2:
            p.error('--flow-convs must be >= 0 and --flow-filters >= 2')
        export_interpolator(args)
        return

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
