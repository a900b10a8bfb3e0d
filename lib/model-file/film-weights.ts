// FILM's feature extractor in a flat tensor map: the convolutions
// extract_sublevels.convs.{j}.{k}.0.{weight,bias}, at the top (an extractor) or under `extract.`
// (a whole interpolator), checked stage by stage as native/model.cc's InspectWeights checks them:
// stage j has width C*2^j, its first conv takes 3 channels (j = 0) or C*2^(j-1), its second its own
// width; kernels are 3x3. Weights come out as float32 (float16 and bfloat16 widened exactly).
import { check, quote } from './format-error';
import { StoredTensor } from './tensor';

export type WeightDtype = 'float32' | 'float16' | 'bfloat16';

export interface Conv {
  /** [out, in, 3, 3], contiguous (OIHW). */
  weight: Float32Array;
  bias: Float32Array;
}

export interface ExtractorWeights {
  source: 'interpolator' | 'extractor';
  format: 'torchscript' | 'torch.save' | 'safetensors';
  dtype: WeightDtype;
  /** Where the weights came from: film_features.json's "weights" (models/export.py), else 'unknown'. */
  origin: string;
  channels: number;
  subLevels: number;
  /** stages[j] = [first conv, second conv]. */
  stages: Array<[Conv, Conv]>;
}

const CONV_NAME = /^(extract\.)?extract_sublevels\.convs\.(0|[1-9]\d{0,2})\.([01])\.0\.(weight|bias)$/;

export function extractorWeights(tensors: Map<string, StoredTensor>, format: ExtractorWeights['format'],
  origin = 'unknown'): ExtractorWeights {
  const found = { interpolator: new Map<string, StoredTensor>(), extractor: new Map<string, StoredTensor>() };
  for (const [name, tensor] of tensors) {
    const m = CONV_NAME.exec(name);
    if (m) found[m[1] ? 'interpolator' : 'extractor'].set(name.slice(m[1]?.length ?? 0), tensor);
  }
  // As the native loader: a whole interpolator's `extract` wins over anything at the top.
  const source: ExtractorWeights['source'] = found.interpolator.size ? 'interpolator' : 'extractor';
  const convs = found[source];
  check(convs.size > 0, 'is not a FILM feature extractor: it has no extract_sublevels.convs.{j}.{k}.0.weight tensors');
  const prefix = source === 'interpolator' ? 'extract.' : '';

  let stages = 0;
  for (const name of convs.keys()) stages = Math.max(stages, Number(name.split('.')[2]) + 1);
  const first = convs.get('extract_sublevels.convs.0.0.0.weight');
  const channels = first && first.shape.length === 4 ? first.shape[0] : 0;
  const dtype = first?.dtype;
  check(dtype === 'float32' || dtype === 'float16' || dtype === 'bfloat16' || dtype === undefined,
    () => `weights are ${dtype}; float32, float16 and bfloat16 are read`);

  const out: Array<[Conv, Conv]> = [];
  for (let j = 0; j < stages; j++) {
    const width = channels * 2 ** j;
    const pair: Conv[] = [];
    for (let k = 0; k < 2; k++) {
      const name = `extract_sublevels.convs.${j}.${k}.0`;
      const weight = convs.get(`${name}.weight`);
      const bias = convs.get(`${name}.bias`);
      check(weight !== undefined && bias !== undefined,
        () => `is not a FILM feature extractor: ${prefix}${name} is missing`);
      const inputs = k === 1 ? width : j === 0 ? 3 : width / 2;
      const expected = [width, inputs, 3, 3];
      check(sameShape(weight.shape, expected), () => `is not a FILM feature extractor: ${prefix}${name}.weight has ` +
        `shape [${weight.shape.join(', ')}], expected [${expected.join(', ')}]`);
      check(sameShape(bias.shape, [width]), () => `is not a FILM feature extractor: ${prefix}${name}.bias has ` +
        `shape [${bias.shape.join(', ')}], expected [${width}]`);
      for (const [part, t] of [['weight', weight], ['bias', bias]] as const) {
        check(t.dtype === dtype, () => `tensor ${quote(`${prefix}${name}.${part}`)} is ${t.dtype}, the others ${dtype}`);
      }
      pair.push({ weight: toFloat32(weight), bias: toFloat32(bias) });
    }
    out.push(pair as [Conv, Conv]);
  }
  return { source, format, dtype: dtype as WeightDtype, origin, channels, subLevels: stages, stages: out };
}

function sameShape(a: number[], b: number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** float16 bits -> float32 bits, for all 65536 values (NaN payloads kept, as PyTorch's conversion). */
let halfTable: Uint32Array | undefined;
function halfToFloatBits(): Uint32Array {
  if (halfTable) return halfTable;
  halfTable = new Uint32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = (h & 0x8000) << 16;
    const exponent = (h >> 10) & 0x1f;
    let mantissa = h & 0x3ff;
    let bits: number;
    if (exponent === 0x1f) {
      bits = sign | 0x7f800000 | (mantissa << 13);
    } else if (exponent !== 0) {
      bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
    } else if (mantissa === 0) {
      bits = sign;
    } else {
      // A subnormal half is a normal float: shift the mantissa up to its leading one.
      let e = 113;
      while (!(mantissa & 0x400)) {
        mantissa <<= 1;
        e--;
      }
      bits = sign | (e << 23) | ((mantissa & 0x3ff) << 13);
    }
    halfTable[h] = bits >>> 0;
  }
  return halfTable;
}

/** A stored float tensor as a new Float32Array (exact: float16 and bfloat16 widen without rounding). */
export function toFloat32(tensor: StoredTensor): Float32Array {
  const { bytes, dtype } = tensor;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (dtype === 'float32') {
    // The file's own bytes where they are aligned (zip records are, to 64): nothing writes to them,
    // and the addon copies what it keeps.
    if (littleEndian && bytes.byteOffset % 4 === 0) return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4);
    const out = new Float32Array(bytes.length / 4);
    if (littleEndian) new Uint8Array(out.buffer).set(bytes);
    else for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(i * 4, true);
    return out;
  }
  const n = bytes.length / 2;
  const out = new Float32Array(n);
  const bits = new Uint32Array(out.buffer);
  if (dtype === 'float16') {
    const table = halfToFloatBits();
    for (let i = 0; i < n; i++) bits[i] = table[view.getUint16(i * 2, true)];
  } else {
    for (let i = 0; i < n; i++) bits[i] = view.getUint16(i * 2, true) << 16;
  }
  return out;
}
