// File headers: NumPy .npy (format v1.0) and safetensors; the data follows from its own memory.
import * as os from 'node:os';

import type { EncodedLevel } from './encode';

const NPY_DESCR = { float32: 'f4', float16: 'f2' } as const;
const SAFETENSORS_DTYPE = { float32: 'F32', float16: 'F16' } as const;

/** The .npy header for a C-ordered array of this shape and dtype, padded to a multiple of 64 bytes. */
export function npyHeader(shape: readonly number[], dtype: EncodedLevel['dtype'] = 'float32'): Buffer {
  // numpy writes 1-tuples as (n,); the data is in this machine's byte order, so say which.
  const dims = shape.length === 1 ? `${shape[0]},` : shape.join(', ');
  const descr = `${os.endianness() === 'LE' ? '<' : '>'}${NPY_DESCR[dtype]}`;
  const dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${dims}), }`;
  const prefix = 10; // magic (6) + version (2) + header length (2)
  const total = Math.ceil((prefix + dict.length + 1) / 64) * 64;
  const header = Buffer.alloc(total, 0x20);
  header.write('\x93NUMPY', 0, 'latin1');
  header[6] = 1;
  header[7] = 0;
  header.writeUInt16LE(total - prefix, 8);
  header.write(dict, prefix, 'latin1');
  header[total - 1] = 0x0a;
  return header;
}

/**
 * The safetensors header: 8-byte little-endian length, then JSON naming each tensor's dtype, shape
 * and byte range, and `__metadata__` (string values only, as the format requires), padded with
 * spaces so the data starts 8-byte aligned. Tensors follow in the order given.
 */
export function safetensorsHeader(levels: readonly { name: string; level: EncodedLevel }[], metadata: Record<string, string>): Buffer {
  if (os.endianness() !== 'LE') throw new Error('safetensors is little-endian; this machine is not');
  const header: Record<string, unknown> = { __metadata__: metadata };
  let offset = 0;
  for (const { name, level } of levels) {
    header[name] = { dtype: SAFETENSORS_DTYPE[level.dtype], shape: level.shape, data_offsets: [offset, offset + level.bytes.byteLength] };
    offset += level.bytes.byteLength;
  }
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const padded = Math.ceil(json.length / 8) * 8;
  const out = Buffer.alloc(8 + padded, 0x20);
  out.writeBigUInt64LE(BigInt(padded), 0);
  json.copy(out, 8);
  return out;
}
