#!/usr/bin/env python3
"""Reference for the interpolation tests: the same TorchScript file, run by Python's torch, with
FILM's own recipe around it (zero padding to a multiple of 64 split evenly, top/left the smaller
half; batch_dt of shape [N, 1], or [N, 1, 1, 1] where the case says "dtRank": 4; predictions clamped to [0, 1]; crop back; in-betweens by
recursion at t = 0.5, each step a whole pad-predict-crop call, as FILM's recursive generator does;
or, where the case says "recursionPadding": "prediction", the scheme of the PyTorch port's
inference.py, written here: pad once, predict, clamp, and feed the padded prediction back as it is).
Writes inputs and frames as raw little-endian files plus interpolate.json, which the mocha tests read.

usage: reference_interpolate.py OUT_DIR CASES_JSON
CASES_JSON: [{"name", "model", "batch", "height", "width", "seed", "bytes", "dtRank",
              "times": [t, ...] or "recursions": k, "recursionPadding": "zeros" or "prediction"}, ...]
"""
import torch

from reference_io import read_cases, write, write_manifest

ALIGN = 64


def pad(x):
    n, c, h, w = x.shape
    ph, pw = -h % ALIGN, -w % ALIGN
    top, left = ph // 2, pw // 2
    out = torch.zeros(n, c, h + ph, w + pw, dtype=x.dtype)
    out[:, :, top:top + h, left:left + w] = x
    return out, (top, left, h, w)


def crop(x, box):
    top, left, h, w = box
    return x[:, :, top:top + h, left:left + w].contiguous()


def predict(model, x0, x1, t, rank):
    dt = torch.full((x0.shape[0],) + (1,) * (rank - 1), float(t), dtype=x0.dtype)
    return model(x0, x1, dt).clamp(0, 1)


def recursive(model, a, b, box, depth, rank):
    """The 2^depth - 1 frames strictly between a and b (padded), in time order. As FILM's recursive
    generator: every step is a whole call (pad, predict, crop), so a middle frame is cropped and
    padded with zeros again before it is an input."""
    if depth == 0:
        return []
    mid, _ = pad(crop(predict(model, a, b, 0.5, rank), box))
    return recursive(model, a, mid, box, depth - 1, rank) + [mid] + recursive(model, mid, b, box, depth - 1, rank)


def recursive_prediction(model, a, b, depth, rank):
    """The same frames by the PyTorch port's inference.py's scheme: the inputs are padded once and
    each clamped prediction is fed back as it is, padding and all (nothing cropped in between)."""
    if depth == 0:
        return []
    mid = predict(model, a, b, 0.5, rank)
    return recursive_prediction(model, a, mid, depth - 1, rank) + [mid] + recursive_prediction(model, mid, b, depth - 1, rank)


def main():
    out_dir, cases = read_cases()
    manifest = []
    for case in cases:
        # fp16 files run in float32 on the CPU, as film-features runs them
        model = torch.jit.load(case['model'], map_location='cpu').float().eval()
        g = torch.Generator().manual_seed(case['seed'])
        n, h, w, name = case['batch'], case['height'], case['width'], case['name']
        entry = dict(case)
        inputs = []
        for k in range(2):
            if case.get('bytes'):
                pixels = torch.randint(0, 256, (n, h, w, 3), generator=g, dtype=torch.uint8)
                entry[f'bytes{k}'] = write(out_dir, f'{name}.in{k}', pixels, 'u8')
                x = (pixels.permute(0, 3, 1, 2).double() / 255).float()
            else:
                x = torch.rand(n, 3, h, w, generator=g)
            entry[f'in{k}'] = write(out_dir, f'{name}.in{k}', x)
            inputs.append(x)
        (x0, box), (x1, _) = pad(inputs[0]), pad(inputs[1])
        rank = case.get('dtRank', 2)
        with torch.no_grad():
            if 'recursions' in case and case.get('recursionPadding', 'zeros') == 'prediction':
                frames = recursive_prediction(model, x0, x1, case['recursions'], rank)
            elif 'recursions' in case:
                frames = recursive(model, x0, x1, box, case['recursions'], rank)
            else:
                frames = [predict(model, x0, x1, t, rank) for t in case['times']]
        frames = [crop(f, box) for f in frames]
        entry['frames'] = [write(out_dir, f'{name}.frame{i}', f) for i, f in enumerate(frames)]
        if case.get('bytes'):
            entry['frameBytes'] = [
                write(out_dir, f'{name}.frame{i}', (f * 255).round().to(torch.uint8).permute(0, 2, 3, 1), 'u8')
                for i, f in enumerate(frames)]
        manifest.append(entry)
    write_manifest(out_dir, 'interpolate.json', manifest)


if __name__ == '__main__':
    main()
