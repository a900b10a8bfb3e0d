#!/usr/bin/env python3
"""Independent reference for the tests: FILM's cascaded extractor written with plain torch.nn.functional
in float64, reading only the weights from the model file. Writes inputs, F.avg_pool2d pyramids and
features as raw little-endian float32 files plus a manifest.json the mocha tests read.

usage: reference.py OUT_DIR CASES_JSON
CASES_JSON: [{"name", "model", "batch", "height", "width", "levels", "seed"}, ...]
"""
import os
import re

import torch
from torch.nn import functional as F

from reference_io import read_cases, write, write_manifest

CONV = re.compile(r'^(?:extract\.)?extract_sublevels\.convs\.(\d+)\.([01])\.0\.(weight|bias)$')


def load_weights(path):
    state = torch.jit.load(path, map_location='cpu').state_dict()
    convs = {}
    for name, t in state.items():
        m = CONV.match(name)
        if m:
            convs[(int(m[1]), int(m[2]), m[3])] = t.double()
    stages = max(j for j, _, _ in convs) + 1
    return convs, stages


def features(convs, stages, pyramid):
    """The seed's FeatureExtractor.forward. The seed also runs sub-tree stages j >= n_i, whose
    outputs no level ever uses (level i takes stage j from sub-pyramid i - j only where j < n_{i-j});
    they are left out here so that the reference stays fast, which changes no output."""
    levels = len(pyramid)
    subs = []
    for i, image in enumerate(pyramid):
        n = min(levels - i, stages)
        head, out = image, []
        for j in range(n):
            for k in range(2):
                head = F.leaky_relu(F.conv2d(head, convs[(j, k, 'weight')], convs[(j, k, 'bias')], padding=1), 0.2)
            out.append(head)
            if j < n - 1:
                head = F.avg_pool2d(head, kernel_size=2, stride=2)
        subs.append(out)
    return [torch.cat([subs[i - j][j] for j in range(min(i, stages - 1) + 1)], dim=1) for i in range(levels)]


def main():
    out_dir, cases = read_cases()
    torch.set_num_threads(os.cpu_count() or 1)
    models = {}
    manifest = []
    for case in cases:
        if case['model'] not in models:
            models[case['model']] = load_weights(case['model'])
        convs, stages = models[case['model']]
        g = torch.Generator().manual_seed(case['seed'])
        image = torch.rand(case['batch'], 3, case['height'], case['width'], generator=g)
        pyramid = [image]
        for _ in range(1, case['levels']):
            pyramid.append(F.avg_pool2d(pyramid[-1], kernel_size=2, stride=2))
        with torch.no_grad():
            feats = features(convs, stages, [p.double() for p in pyramid])
        name = case['name']
        manifest.append({
            **case,
            'pyramid': [write(out_dir, f'{name}.pyramid{i}', p) for i, p in enumerate(pyramid)],
            'features': [write(out_dir, f'{name}.features{i}', t.float()) for i, t in enumerate(feats)],
        })
    write_manifest(out_dir, 'manifest.json', manifest)


if __name__ == '__main__':
    main()
