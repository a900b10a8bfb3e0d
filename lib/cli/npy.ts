// Float32 arrays as NumPy .npy files (format v1.0), readable by numpy.load.
import { promises as fs } from 'node:fs';
import * as os from 'node:os';

/** The .npy header for a C-ordered float32 array of this shape, padded to a multiple of 64 bytes. */
export function npyHeader(shape: readonly number[]): Buffer {
  // numpy writes 1-tuples as (n,); the data is in this machine's byte order, so say which.
  const dims = shape.length === 1 ? `${shape[0]},` : shape.join(', ');
  const descr = os.endianness() === 'LE' ? '<f4' : '>f4';
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

/** Writes `data` with `shape` to `file`; the data is written from its own memory, not copied. */
export async function writeNpy(file: string, data: Float32Array, shape: readonly number[]): Promise<void> {
  const count = shape.reduce((a, b) => a * b, 1);
  if (count !== data.length) throw new RangeError(`shape [${shape.join(', ')}] needs ${count} values, got ${data.length}`);
  const body = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const handle = await fs.open(file, 'w');
  try {
    // writeFile loops until every byte is written, from where the last write ended.
    await handle.writeFile(npyHeader(shape));
    await handle.writeFile(body);
  } finally {
    await handle.close();
  }
}
