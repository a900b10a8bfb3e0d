"""The reference for test/23.model-reader.test.js: what PyTorch itself reads from model files.

  dump_weights.py make OUT      writes torch.save and safetensors files made from the shipped model
                                and the fixtures into OUT (safetensors written from the format's spec:
                                no safetensors package here), each safetensors file beside a torch.save
                                file of the same tensors (NAME.safetensors and NAME.safetensors.pt)
  dump_weights.py dump FILE...  prints JSON {file: {name: {dtype, shape, raw, f32}} or null where torch
                                cannot load the file}: raw is the sha256
                                of the tensor's bytes in row-major order as stored (16-bit types as
                                their bits), f32 the sha256 of tensor.float()'s bytes (float types only)
"""
import hashlib
import json
import os
import struct
import sys
from collections import OrderedDict

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAFETENSORS_DTYPES = {torch.float32: 'F32', torch.float16: 'F16', torch.bfloat16: 'BF16', torch.float64: 'F64',
                      torch.int64: 'I64', torch.int32: 'I32', torch.uint8: 'U8', torch.bool: 'BOOL'}


def raw_bytes(t: torch.Tensor) -> bytes:
    t = t.detach().contiguous()
    if t.dtype in (torch.float16, torch.bfloat16):
        t = t.view(torch.int16)
    return t.numpy().tobytes()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def load(path: str) -> 'OrderedDict[str, torch.Tensor]':
    try:
        return torch.jit.load(path, map_location='cpu').state_dict()
    except Exception:  # not TorchScript: a torch.save file
        obj = torch.load(path, map_location='cpu')
        for key in ('state_dict', 'model'):
            if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
                obj = obj[key]
        return OrderedDict((k, v) for k, v in obj.items() if isinstance(v, torch.Tensor))


def dump(paths):
    out = {}
    for path in paths:
        try:
            tensors = load(path)
        except Exception:  # torch cannot load it either (a file saved after optimize_for_inference)
            out[path] = None
            continue
        entry = {}
        for name, t in tensors.items():
            entry[name] = {
                'dtype': str(t.dtype).replace('torch.', ''),
                'shape': list(t.shape),
                'raw': sha(raw_bytes(t)),
                'f32': sha(t.detach().float().contiguous().numpy().tobytes()) if t.is_floating_point() else None,
            }
        out[path] = entry
    print(json.dumps(out))


def write_safetensors(path: str, tensors: 'OrderedDict[str, torch.Tensor]') -> None:
    """The format's spec: u64 LE header length, a JSON header, then the data (offsets from its start)."""
    header = {'__metadata__': {'format': 'pt', 'made_by': 'test/dump_weights.py'}}
    chunks, offset = [], 0
    for name, t in tensors.items():
        data = raw_bytes(t)
        header[name] = {'dtype': SAFETENSORS_DTYPES[t.dtype], 'shape': list(t.shape),
                        'data_offsets': [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(',', ':')).encode()
    text += b' ' * (-len(text) % 8)  # the writers pad the header to 8 bytes
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(text)) + text + b''.join(chunks))
    torch.save(tensors, path + '.pt')


def make(out: str) -> None:
    os.makedirs(out, exist_ok=True)
    sd = torch.jit.load(os.path.join(ROOT, 'models', 'film_extractor.pt')).state_dict()
    torch.save(sd, os.path.join(out, 'state_dict.pt'))
    torch.save({k: v.half() for k, v in sd.items()}, os.path.join(out, 'state_dict_fp16.pt'))
    # protocol 4: FRAME, SHORT_BINUNICODE, MEMOIZE, STACK_GLOBAL; and a plain dict, not an OrderedDict
    torch.save({k: v.bfloat16() for k, v in sd.items()}, os.path.join(out, 'state_dict_bf16.pt'), pickle_protocol=4)
    torch.save({'state_dict': sd, 'epoch': 3}, os.path.join(out, 'wrapped.pt'), pickle_protocol=5)
    interpolator = torch.jit.load(os.path.join(ROOT, 'test', '.fixtures', 'film_interpolator.pt')).state_dict()
    torch.save(interpolator, os.path.join(out, 'interpolator_state_dict.pt'))

    # Views of one storage: a transpose, a slice at an offset, a flat window, a permuted 4-d weight.
    torch.manual_seed(7)
    base = torch.randn(6, 10)
    w = sd['extract_sublevels.convs.1.0.0.weight']
    strided = OrderedDict([('base', base), ('transposed', base.t()), ('slice', base[1:5, 2:9:3]),
                           ('window', base.view(-1)[13:29]), ('permuted', w.permute(2, 3, 1, 0)),
                           ('half_t', base.half().t()), ('scalar', base[2, 3]), ('empty', base[:, 4:4])])
    torch.save(strided, os.path.join(out, 'strided.pt'))

    write_safetensors(os.path.join(out, 'extractor.safetensors'), sd)
    write_safetensors(os.path.join(out, 'extractor_fp16.safetensors'),
                      OrderedDict((k, v.half()) for k, v in sd.items()))
    write_safetensors(os.path.join(out, 'interpolator_bf16.safetensors'),
                      OrderedDict((k, v.bfloat16()) for k, v in interpolator.items()))


if __name__ == '__main__':
    if sys.argv[1] == 'make':
        make(sys.argv[2])
    else:
        dump(sys.argv[2:])
