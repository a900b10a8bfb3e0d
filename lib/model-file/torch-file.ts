// A PyTorch zip file (TorchScript or torch.save) as a flat map of tensor names to stored tensors,
// read from data.pkl without libtorch and without running the file's code.
// TorchScript: data.pkl is the module tree (objects whose state is a dict of attributes); a tensor
// attribute's name is the path of attribute names, as named_parameters() gives it.
// torch.save: data.pkl is a state_dict (name -> tensor), or one wrapped as {'state_dict': ...} or
// {'model': ...}.
import { check, quote } from './format-error';
import { PDict, PObject, PickleValue, StorageRef, TensorSpec, typeName, unpickle } from './pickle';
import { StoredTensor, viewOfStorage } from './tensor';
import { ZipArchive } from './zip';

export interface TorchFile {
  format: 'torchscript' | 'torch.save';
  /** A TorchScript module's own numbers and flags (e.g. FILM's pyramid_levels); none for torch.save. */
  attributes: Map<string, number | boolean>;
  /** The folder every record sits in (e.g. 'film_extractor/'); it varies from file to file. */
  prefix: string;
  tensors: Map<string, StoredTensor>;
  /** The "weights" string of extra/film_features.json (models/export.py's record), if there is one. */
  origin?: string;
}

/** Metadata larger than this is not ours, and is ignored. */
const MAX_METADATA = 64 * 1024;

/** Module nesting deeper than this is not a model. */
const MAX_MODULE_DEPTH = 256;
/** Modules visited in all: far beyond any real model, short of a crafted exponential tree. */
const MAX_MODULE_VISITS = 1_000_000;

export function readTorchZip(zip: ZipArchive): TorchFile {
  const pickles = [...zip.entries.keys()].filter((n) => n === 'data.pkl' || /^[^/]+\/data\.pkl$/.test(n));
  check(pickles.length > 0, 'is a zip without a data.pkl record: not a PyTorch file');
  check(pickles.length === 1, () => `has several data.pkl records (${pickles.map((n) => quote(n)).join(', ')})`);
  const pickleName = pickles[0];
  const prefix = pickleName.slice(0, -'data.pkl'.length);
  // torch.save may record the byte order of its tensors (PyTorch 2.x); ours are read as little-endian.
  const byteorder = zip.entries.get(`${prefix}byteorder`);
  if (byteorder) {
    const order = byteorder.size <= 16 ? new TextDecoder().decode(zip.read(byteorder.name)).trim() : '';
    check(order === 'little', () => `its tensors are stored ${quote(order)}-endian; only little-endian files are read`);
  }
  const root = unpickle(zip.read(pickleName), pickleName);

  const specs = new Map<string, TensorSpec>();
  let format: TorchFile['format'];
  if (root instanceof PObject) {
    format = 'torchscript';
    collectModuleTensors(root, specs);
  } else if (root instanceof PDict) {
    format = 'torch.save';
    let dict = root;
    if (!hasTensors(dict)) {
      for (const key of ['state_dict', 'model']) {
        const inner = dict.map.get(key);
        if (inner instanceof PDict && hasTensors(inner)) {
          dict = inner;
          break;
        }
      }
    }
    for (const [key, value] of dict.map) {
      if (typeof key === 'string' && value instanceof TensorSpec) specs.set(key, value);
    }
  } else {
    check(false, `${pickleName} holds a ${typeName(root)}, neither a TorchScript module nor a state_dict`);
  }

  // Each storage's record is read once (and its CRC checked once); tensors are views into it.
  const records = new Map<string, Uint8Array>();
  const tensors = new Map<string, StoredTensor>();
  for (const [name, spec] of specs) {
    const storage: StorageRef = spec.storage;
    check(/^[A-Za-z0-9_.-]+$/.test(storage.key) && storage.key !== '..',
      () => `tensor ${quote(name)} names the storage ${quote(storage.key)}`);
    const recordName = `${prefix}data/${storage.key}`;
    let record = records.get(recordName);
    if (!record) {
      record = zip.read(recordName);
      records.set(recordName, record);
    }
    tensors.set(name, viewOfStorage(name, record, recordName, storage.dtype, storage.numel, spec.offset, spec.size,
      spec.stride));
  }
  return { format, prefix, tensors, attributes: root instanceof PObject ? scalarAttributes(root) : new Map(), origin: readOrigin(zip, prefix) };
}

/** models/export.py's metadata: optional, so anything unexpected in it is ignored rather than refused. */
function readOrigin(zip: ZipArchive, prefix: string): string | undefined {
  const entry = zip.entries.get(`${prefix}extra/film_features.json`);
  if (!entry || entry.size > MAX_METADATA) return undefined;
  try {
    const meta: unknown = JSON.parse(new TextDecoder().decode(zip.read(entry.name)));
    const weights = (meta as { weights?: unknown } | null)?.weights;
    return typeof weights === 'string' ? weights : undefined;
  } catch {
    return undefined;
  }
}

function hasTensors(dict: PDict): boolean {
  for (const value of dict.map.values()) if (value instanceof TensorSpec) return true;
  return false;
}

/**
 * Every tensor attribute under `root`, named by its path, as torch's state_dict names them: a module
 * shared by two attributes gives both names. Iterative, and bounded: a cycle or a shared-module
 * explosion (possible only in crafted files) ends at the depth or visit limit.
 */
/** The root module's int, float and bool attributes (their values are data: nothing runs). */
function scalarAttributes(root: PObject): Map<string, number | boolean> {
  const out = new Map<string, number | boolean>();
  if (!(root.state instanceof PDict)) return out;
  for (const [key, value] of root.state.map) {
    if (typeof key !== 'string') continue;
    if (typeof value === 'number' || typeof value === 'boolean') out.set(key, value);
    else if (typeof value === 'bigint' && value >= -(2n ** 53n) && value <= 2n ** 53n) out.set(key, Number(value));
  }
  return out;
}

function collectModuleTensors(root: PObject, out: Map<string, TensorSpec>): void {
  const work: Array<{ module: PObject; prefix: string; depth: number }> = [{ module: root, prefix: '', depth: 0 }];
  let visits = 0;
  while (work.length) {
    const { module, prefix, depth } = work.pop() as (typeof work)[number];
    check(++visits <= MAX_MODULE_VISITS, () => `has more than ${MAX_MODULE_VISITS} modules (or a module cycle)`);
    const state: PickleValue = module.state;
    if (!(state instanceof PDict)) continue; // a module with no attributes, or a state we do not read
    const children: typeof work = [];
    for (const [key, value] of state.map) {
      if (typeof key !== 'string') continue;
      if (value instanceof TensorSpec) {
        out.set(prefix + key, value);
      } else if (value instanceof PObject) {
        check(depth < MAX_MODULE_DEPTH, () => `modules nest deeper than ${MAX_MODULE_DEPTH} (at ${quote(prefix + key)})`);
        children.push({ module: value, prefix: `${prefix}${key}.`, depth: depth + 1 });
      }
    }
    for (let i = children.length - 1; i >= 0; i--) work.push(children[i]); // depth first, in file order
  }
}
