// safetensors: an 8-byte little-endian header length, a JSON header
// {name: {dtype, shape, data_offsets: [begin, end]}, __metadata__?: {...}}, then the data region
// the offsets count from. Every offset is checked to lie in that region, and every size to equal
// the tensor's element count times its item size, before a view of it is made.
import { check, quote } from './format-error';
import { Dtype, ITEM_SIZE } from './pickle';
import { StoredTensor, elementCount } from './tensor';

const DTYPES: Record<string, Dtype> = {
  F32: 'float32', F16: 'float16', BF16: 'bfloat16', F64: 'float64', I64: 'int64', I32: 'int32', I16: 'int16',
  I8: 'int8', U8: 'uint8', BOOL: 'bool',
};

/** The format's own limit on the header (safetensors refuses larger ones too). */
const MAX_HEADER = 100 * 1024 * 1024;

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Whether `bytes` start like a safetensors file: a header length that fits, then '{'. */
export function looksLikeSafetensors(bytes: Uint8Array): boolean {
  if (bytes.length < 10) return false;
  const length = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  return bytes[8] === 0x7b && length >= 2n;
}

export function readSafetensors(bytes: Uint8Array): Map<string, StoredTensor> {
  check(bytes.length >= 8, `is ${bytes.length} bytes, too short for a safetensors file`);
  const claimed = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  check(claimed <= BigInt(bytes.length - 8) && claimed <= BigInt(MAX_HEADER),
    () => `its safetensors header length ${claimed} is past the end of the file (${bytes.length} bytes)`);
  const headerEnd = 8 + Number(claimed);
  let header: unknown;
  try {
    header = JSON.parse(utf8.decode(bytes.subarray(8, headerEnd)));
  } catch (err) {
    check(false, `its safetensors header is not JSON (${(err as Error).message.split('\n')[0]})`);
  }
  check(typeof header === 'object' && header !== null && !Array.isArray(header), 'its safetensors header is not an object');

  const data = bytes.subarray(headerEnd);
  const tensors = new Map<string, StoredTensor>();
  const spans: Array<[number, number, string]> = [];
  for (const [name, entry] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') continue;
    const what = `tensor ${quote(name)}`;
    const e = entry as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    check(typeof e === 'object' && e !== null, () => `${what}: its header entry is not an object`);
    check(typeof e.dtype === 'string' && Object.hasOwn(DTYPES, e.dtype),
      () => `${what} has dtype ${quote(String(e.dtype))}, which is not read`);
    const dtype = DTYPES[e.dtype as string];
    check(Array.isArray(e.shape) && e.shape.length <= 64, () => `${what} has no shape list`);
    const shape = e.shape as number[];
    const offsets = e.data_offsets;
    check(Array.isArray(offsets) && offsets.length === 2 && offsets.every((v) => Number.isSafeInteger(v)),
      () => `${what} has no data_offsets [begin, end]`);
    const [begin, end] = offsets as [number, number];
    check(begin >= 0 && begin <= end && end <= data.length,
      () => `${what}: data_offsets [${begin}, ${end}] are outside the data (${data.length} bytes)`);
    const numel = elementCount(shape, data.length, what);
    check(end - begin === numel * ITEM_SIZE[dtype],
      () => `${what} of shape [${shape}] ${dtype} needs ${numel * ITEM_SIZE[dtype]} bytes, its data_offsets give ${end - begin}`);
    tensors.set(name, { dtype, shape: [...shape], bytes: data.subarray(begin, end) });
    if (end > begin) spans.push([begin, end, name]);
  }
  // The format forbids tensors sharing bytes.
  spans.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  for (let i = 1; i < spans.length; i++) {
    check(spans[i - 1][1] <= spans[i][0], () => `tensors ${quote(spans[i - 1][2])} and ${quote(spans[i][2])} overlap`);
  }
  return tensors;
}
