// Model files read without libtorch (issue 30): TorchScript and torch.save zips, and safetensors,
// to a flat map of stored tensors, and FILM's extractor weights from it. No code in the file runs.
// Errors: ERR_FILM_MODEL_FILE when the file cannot be read, ERR_FILM_MODEL_FORMAT for anything about
// its content; every message is one line naming the file.
import * as fs from 'node:fs';
import { withCode } from '../errors';
import { ModelFormatError } from './format-error';
import { ExtractorWeights, extractorWeights } from './film-weights';
import { looksLikeSafetensors, readSafetensors } from './safetensors';
import { StoredTensor } from './tensor';
import { readTorchZip } from './torch-file';
import { ZipArchive } from './zip';

export type { Conv, ExtractorWeights, WeightDtype } from './film-weights';
export { toFloat32 } from './film-weights';
export type { Dtype, StoredTensor } from './tensor';

export type ModelFileFormat = 'torchscript' | 'torch.save' | 'safetensors';

/** How a file was read, for fx.info: by this reader, and without running anything in it. */
export interface ReaderDescription {
  reader: 'film-features';
  format: ModelFileFormat;
  codeRun: false;
}

export interface ModelFile {
  path: string;
  format: ModelFileFormat;
  /** The zip folder every record sits in ('' for safetensors). */
  prefix: string;
  /** Every tensor in the file by name (a TorchScript module's attribute path, or the state_dict key). */
  tensors: Map<string, StoredTensor>;
  /** film_features.json's "weights" in a file models/export.py wrote, else 'unknown'. */
  origin: string;
  /** A TorchScript module's own numbers and flags (FILM's pyramid_levels, say); empty otherwise. */
  attributes: Map<string, number | boolean>;
  describe: ReaderDescription;
}

/** Past this, Node cannot read a file into one buffer; no FILM file comes near it. */
const MAX_FILE_BYTES = 2 ** 31 - 1;

const LEGACY_TORCH_SAVE = Buffer.from('8002 8a0a 6cfc 9c46 f920 6aa8 5019'.replace(/ /g, ''), 'hex');

export async function readModelFile(path: string): Promise<ModelFile> {
  const bytes = await readBytes(path);
  return parseModelFile(path, bytes);
}

export async function readExtractorWeights(path: string): Promise<ExtractorWeights> {
  const file = await readModelFile(path);
  return inFile(path, () => extractorWeights(file.tensors, file.format, file.origin));
}

/** The same as readModelFile, over bytes already in memory (`path` only names them in messages). */
export function parseModelFile(path: string, bytes: Uint8Array): ModelFile {
  return inFile(path, () => {
    let format: ModelFileFormat;
    let prefix = '';
    let tensors: Map<string, StoredTensor>;
    let origin: string | undefined;
    let attributes = new Map<string, number | boolean>();
    const magic = bytes.subarray(0, 4);
    if (magic[0] === 0x50 && magic[1] === 0x4b && (magic[2] === 3 || magic[2] === 5) && magic[3] === magic[2] + 1) {
      const file = readTorchZip(ZipArchive.open(bytes));
      ({ format, prefix, tensors, origin, attributes } = file);
    } else if (looksLikeSafetensors(bytes)) {
      format = 'safetensors';
      tensors = readSafetensors(bytes);
    } else if (Buffer.from(bytes.subarray(0, LEGACY_TORCH_SAVE.length)).equals(LEGACY_TORCH_SAVE)) {
      throw new ModelFormatError('is a torch.save file in the legacy format (PyTorch before 1.6), which is not ' +
        'read: load and save it again with a current PyTorch');
    } else {
      throw new ModelFormatError(bytes.length ? 'is not a zip/safetensors file' : 'is empty: not a zip/safetensors file');
    }
    return { path, format, prefix, tensors, origin: origin ?? 'unknown', attributes, describe: { reader: 'film-features', format, codeRun: false } };
  });
}

async function readBytes(path: string): Promise<Uint8Array> {
  let handle: fs.promises.FileHandle | undefined;
  try {
    // O_NONBLOCK: opening a FIFO would otherwise wait for a writer for ever (a regular file ignores it).
    handle = await fs.promises.open(path, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    const stat = await handle.stat();
    // A device or FIFO has no size to check, and /dev/zero never ends.
    if (!stat.isFile()) throw new Error(`it is ${fileKind(stat)}, not a regular file`);
    if (stat.size > MAX_FILE_BYTES) throw new Error(`is ${stat.size} bytes, more than this reader takes (${MAX_FILE_BYTES})`);
    return await handle.readFile();
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why = e.code === 'ENOENT' ? 'no such file' : e.code === 'EISDIR' ? 'it is a directory, not a regular file'
      : e.code === 'EACCES' || e.code === 'EPERM' ? 'permission denied' : e.message;
    throw withCode(new Error(`cannot load model '${path}': ${why}`),
      'ERR_FILM_MODEL_FILE');
  } finally {
    await handle?.close();
  }
}

function fileKind(stat: fs.Stats): string {
  if (stat.isDirectory()) return 'a directory';
  if (stat.isFIFO()) return 'a FIFO';
  if (stat.isSocket()) return 'a socket';
  if (stat.isCharacterDevice()) return 'a character device';
  if (stat.isBlockDevice()) return 'a block device';
  return 'not a regular file';
}

/** Runs a reader, turning what it throws into ERR_FILM_MODEL_FORMAT naming the file. */
function inFile<T>(path: string, read: () => T): T {
  try {
    return read();
  } catch (err) {
    // Any other error here is a gap in the checks; it is still about this file's content, not a crash.
    const message = err instanceof Error ? err.message : String(err);
    const detail = err instanceof ModelFormatError ? message : `cannot be read (${message})`;
    const joined = /^(is|has|says) /.test(detail) ? `'${path}' ${detail}` : `'${path}': ${detail}`;
    throw withCode(new Error(joined.split('\n')[0]), 'ERR_FILM_MODEL_FORMAT');
  }
}
