"""Helper of bench/port-parity.js: runs the PyTorch port's own inference.py (a checkout of
dajes/frame-interpolation-pytorch, never copied into this repository) and keeps its float frames.

  port_parity.py resize  --photos A,B --size WxH --out DIR     # DIR/a.png, DIR/b.png (cv2 INTER_AREA)
  port_parity.py run     --port DIR --model FILE --dir DIR --frames N --times T,T,...
  port_parity.py compare --dir DIR                              # numpy: ours_*.f32 against port_*.f32

`run` imports the port's inference.py from --port (after chdir to --dir) and calls its own
inference(model, a.png, b.png, save_path, gpu=False, inter_frames=N, fps=10, half=False), unchanged.
Two module attributes are wrapped to see what it computes, without changing what it does:
  - torch.jit.load (as inference.py reaches it): the model it loads is wrapped; each forward's
    output is recorded, before inference.py clamps it and quantizes it to 8 bits;
  - bisect (inference.py's module): bisect_left(idxes, k) is where it inserts the frame of split
    index k, so the i-th forward made the frame at time k / (N + 1);
  - cv2.VideoWriter: its frames (the 8-bit BGR crops inference.py writes to output.mp4) are kept too,
    and passed on to the real writer.
The recorded frames are clamped to [0, 1] and cropped to inference.py's crop region exactly as it
does (results.insert(..., prediction.clamp(0, 1)), then [y1:y2, x1:x2]).
Times that inference.py cannot make in one call (it always interpolates at the split nearest the
middle of an interval) are made with its own pieces, the way its loop makes each frame:
util.load_image (read, /255, zero-pad to 64), the same model load, x0.new_full((1, 1), t), forward
under no_grad, clamp(0, 1), crop.
Files in --dir: in_a.f32, in_b.f32 (the float inputs, unpadded, [3, h, w]); port_rec_K.f32 (frame of
split K), port_rec_K.u8 (its 8-bit RGB frame from output.mp4's writer, [h, w, 3]); port_t_I.f32
(direct time I); port.json (what ran).
"""
import argparse
import bisect as bisect_module
import json
import os
import sys
import types

import numpy as np


def parse_size(s):
    w, h = s.lower().split('x')
    return int(w), int(h)


def cmd_resize(args):
    import cv2
    w, h = parse_size(args.size)
    os.makedirs(args.out, exist_ok=True)
    for src, name in zip(args.photos.split(','), ('a.png', 'b.png')):
        image = cv2.imread(src, cv2.IMREAD_COLOR)
        if image is None:
            sys.exit(f'cannot read {src}')
        if image.shape[:2] != (h, w):
            image = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
        cv2.imwrite(os.path.join(args.out, name), image)


def save_f32(path, tensor):
    np.ascontiguousarray(tensor, dtype=np.float32).tofile(path)


def cmd_run(args):
    port = os.path.abspath(args.port)
    model_path = os.path.abspath(args.model)
    args.dir = os.path.abspath(args.dir)
    os.chdir(args.dir)
    sys.path.insert(0, port)
    import torch
    import inference  # the port's inference.py
    import util       # the port's util.py

    calls = []    # each forward's output, in call order
    inserted = []  # the split index each frame was inserted at, in call order

    class Recorded:
        def __init__(self, module):
            self.module = module

        def __call__(self, x0, x1, dt):
            out = self.module(x0, x1, dt)
            calls.append((float(dt.flatten()[0]), out.detach().cpu().float().clone()))
            return out

        def eval(self):
            self.module.eval()
            return self

        def float(self):
            self.module.float()
            return self

        def __getattr__(self, name):
            return getattr(self.module, name)

    real_load = torch.jit.load
    real_bisect_left = bisect_module.bisect_left

    def bisect_left(a, x, *rest):
        inserted.append(int(x))
        return real_bisect_left(a, x, *rest)

    written = []
    real_writer = inference.cv2.VideoWriter

    class Writer:
        def __init__(self, *a):
            self.writer = real_writer(*a)

        def write(self, frame):
            written.append(frame.copy())
            self.writer.write(frame)

        def release(self):
            self.writer.release()

    torch.jit.load = lambda *a, **k: Recorded(real_load(*a, **k))
    inference.bisect = types.SimpleNamespace(bisect_left=bisect_left)
    inference.cv2.VideoWriter = Writer

    frames = args.frames
    try:
        inference.inference(model_path, 'a.png', 'b.png', os.path.join(args.dir, 'output.mp4'), False, frames, 10, False)
    finally:
        torch.jit.load = real_load
        inference.cv2.VideoWriter = real_writer
    if len(calls) != frames or sorted(inserted) != list(range(1, frames + 1)):
        sys.exit(f'inference.py made {len(calls)} calls at splits {inserted}; expected {frames}')

    img_a, crop = util.load_image('a.png')
    img_b, _ = util.load_image('b.png')
    y1, x1, y2, x2 = crop
    for name, img in (('in_a', img_a), ('in_b', img_b)):
        save_f32(f'{name}.f32', img[0, y1:y2, x1:x2].transpose(2, 0, 1))
    recursion = []
    for (dt, out), k in zip(calls, inserted):
        save_f32(f'port_rec_{k}.f32', out.clamp(0, 1)[0, :, y1:y2, x1:x2].numpy())
        # the video: the frames in time order (inputs at 0 and frames + 1), then back again
        np.ascontiguousarray(written[k][..., ::-1]).tofile(f'port_rec_{k}.u8')
        recursion.append({'split': k, 'time': k / (frames + 1), 'dt': dt, 'order': len(recursion)})

    # direct times: inference.py's own per-frame steps, one call each
    model = real_load(model_path, map_location='cpu')
    model.eval()
    file_dtype = str(next(model.parameters()).dtype)
    model.float()
    x0 = torch.from_numpy(img_a).permute(0, 3, 1, 2)
    x1_ = torch.from_numpy(img_b).permute(0, 3, 1, 2)
    direct = []
    for i, t in enumerate(float(s) for s in args.times.split(',') if s):
        dt = x0.new_full((1, 1), t)
        with torch.no_grad():
            prediction = model(x0, x1_, dt)
        save_f32(f'port_t_{i}.f32', prediction.clamp(0, 1)[0, :, y1:y2, x1:x2].numpy())
        direct.append({'index': i, 'time': t})
    h, w = y2 - y1, x2 - x1
    info = {'height': h, 'width': w, 'padded': list(img_a.shape[1:3]), 'crop': crop, 'frames': frames,
            'recursion': recursion, 'direct': direct, 'torch': torch.__version__, 'threads': torch.get_num_threads(),
            'file_dtype': file_dtype, 'dtype': str(next(model.parameters()).dtype)}
    json.dump(info, open('port.json', 'w'), indent=1)
    print(json.dumps({'port': 'done', 'calls': len(calls)}))


def cmd_compare(args):
    info = json.load(open(os.path.join(args.dir, 'port.json')))
    rows = []
    for name in sorted(os.listdir(args.dir)):
        if not (name.startswith('ours_') and name.endswith('.f32')):
            continue
        # ours_rec_2.prediction.f32 (ours with recursionPadding 'prediction') compares with port_rec_2.f32
        ref_name = 'port_' + name[len('ours_'):].split('.')[0] + '.f32'
        ours = np.fromfile(os.path.join(args.dir, name), dtype=np.float32)
        ref = np.fromfile(os.path.join(args.dir, ref_name), dtype=np.float32)
        if ours.shape != ref.shape:
            sys.exit(f'{name}: {ours.size} values, {ref_name}: {ref.size}')
        d = np.abs(ours.astype(np.float64) - ref.astype(np.float64))
        row = {'ours': name, 'port': ref_name, 'max': float(d.max()), 'mean': float(d.mean()),
               'inside': float(((ref > 0) & (ref < 1)).mean())}
        u8 = os.path.join(args.dir, ref_name[:-4] + '.u8')
        if os.path.exists(u8):  # inference.py's 8-bit frame: (v * 255).byte(), which truncates
            b = np.fromfile(u8, dtype=np.uint8).reshape(info['height'], info['width'], 3).transpose(2, 0, 1).ravel()
            d8 = np.abs((ours * 255).astype(np.uint8).astype(int) - b)
            row['bytes_max'] = int(d8.max())
            row['bytes_off'] = int((d8 != 0).sum())
        rows.append(row)
    print(json.dumps(rows))


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    sub = p.add_subparsers(dest='cmd', required=True)
    r = sub.add_parser('resize')
    r.add_argument('--photos', required=True)
    r.add_argument('--size', required=True)
    r.add_argument('--out', required=True)
    r = sub.add_parser('run')
    r.add_argument('--port', required=True)
    r.add_argument('--model', required=True)
    r.add_argument('--dir', required=True)
    r.add_argument('--frames', type=int, default=3)
    r.add_argument('--times', default='0.25,0.5,0.75')
    r = sub.add_parser('compare')
    r.add_argument('--dir', required=True)
    args = p.parse_args()
    {'resize': cmd_resize, 'run': cmd_run, 'compare': cmd_compare}[args.cmd](args)


if __name__ == '__main__':
    main()
