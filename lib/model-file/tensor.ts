// A stored tensor: its dtype, shape and raw little-endian bytes in row-major order, as the file
// holds them (before any conversion). Views of a storage are checked against the storage's bytes
// before anything is sized from them: a file cannot make us allocate more than it holds.
import { check, quote } from './format-error';
import { Dtype, ITEM_SIZE } from './pickle';

export type { Dtype } from './pickle';

export interface StoredTensor {
  dtype: Dtype;
  shape: number[];
  /** Row-major, little-endian: a view into the file's bytes when the stored tensor is contiguous. */
  bytes: Uint8Array;
}

/** The element count of `shape`, refused once it passes `limit` (so it never overflows). */
export function elementCount(shape: number[], limit: number, what: string): number {
  for (const size of shape) {
    check(Number.isSafeInteger(size) && size >= 0, () => `${what} has a size of ${size}`);
    if (size === 0) return 0;
  }
  let numel = 1;
  for (const size of shape) {
    numel *= size;
    check(numel <= limit, () => `${what} of shape [${shape}] has more elements than its bytes can hold (${limit})`);
  }
  return numel;
}

/**
 * The tensor `size`/`stride` at element `offset` of `storage` (whose bytes are `record`): a view if
 * it is contiguous, else a gathered copy; refused unless every element lies inside the record.
 */
export function viewOfStorage(name: string, record: Uint8Array, recordName: string, dtype: Dtype,
  storageNumel: number, offset: number, size: number[], stride: number[]): StoredTensor {
  const item = ITEM_SIZE[dtype];
  const what = `tensor ${quote(name)}`;
  check(storageNumel * item <= record.length,
    () => `${what}: record ${quote(recordName)} holds ${record.length} bytes, its storage claims ${storageNumel} ` +
      `${dtype} elements (${storageNumel * item} bytes)`);
  check(Number.isSafeInteger(offset) && offset >= 0, () => `${what} has a storage offset of ${offset}`);
  for (const s of stride) check(Number.isSafeInteger(s) && s >= 0, () => `${what} has a stride of ${s}`);
  const numel = elementCount(size, storageNumel, what);
  if (numel === 0) return { dtype, shape: size, bytes: new Uint8Array(0) };

  // The last element's index, in doubles: exact while it is small, and any large one is refused.
  let last = offset;
  for (let d = 0; d < size.length; d++) last += (size[d] - 1) * stride[d];
  check(last < storageNumel, () => `${what} of shape [${size}], stride [${stride}] at offset ${offset} reaches ` +
    `element ${last}, past its storage of ${storageNumel} elements`);

  let contiguous = true;
  for (let d = size.length - 1, expected = 1; d >= 0; d--) {
    if (size[d] !== 1 && stride[d] !== expected) contiguous = false;
    expected *= size[d];
  }
  if (contiguous) return { dtype, shape: size, bytes: record.subarray(offset * item, (offset + numel) * item) };

  // Gather in row-major order: numel elements, each inside the record (checked above).
  const out = new Uint8Array(numel * item);
  const index = new Array<number>(size.length).fill(0);
  let source = offset;
  for (let i = 0; i < numel; i++) {
    out.set(record.subarray(source * item, source * item + item), i * item);
    for (let d = size.length - 1; d >= 0; d--) {
      if (++index[d] < size[d]) {
        source += stride[d];
        break;
      }
      source -= (size[d] - 1) * stride[d];
      index[d] = 0;
    }
  }
  return { dtype, shape: size, bytes: out };
}
