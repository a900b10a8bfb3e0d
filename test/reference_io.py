"""What test/reference.py and test/reference_interpolate.py share: the command line (OUT_DIR
CASES_JSON) and the raw little-endian files and manifest the mocha tests read."""
import json
import os
import sys


def read_cases():
    """OUT_DIR (made) and the cases listed in CASES_JSON."""
    out_dir, cases_file = sys.argv[1], sys.argv[2]
    os.makedirs(out_dir, exist_ok=True)
    with open(cases_file) as f:
        return out_dir, json.load(f)


def write(out_dir, name, tensor, suffix='f32'):
    """The tensor's bytes as OUT_DIR/NAME.SUFFIX; returns its manifest entry."""
    path = os.path.join(out_dir, f'{name}.{suffix}')
    tensor.detach().contiguous().numpy().tofile(path)
    return {'file': path, 'shape': list(tensor.shape)}


def write_manifest(out_dir, name, manifest):
    with open(os.path.join(out_dir, name), 'w') as f:
        json.dump(manifest, f, indent=1)
