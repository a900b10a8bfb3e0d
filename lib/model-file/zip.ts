// A zip reader for PyTorch's archives (TorchScript and torch.save files), over bytes in memory.
// Everything is checked against the bytes that are there before it is used: the central directory is
// the only index trusted, and only after its offsets, sizes and names pass; local headers must agree
// with it and may not overlap. PyTorch's writer (miniz) stores records uncompressed, sets the data
// descriptor flag (so local headers carry no sizes) and always ends with a zip64 end record.
import * as zlib from 'node:zlib';
import { check, quote } from './format-error';

export interface ZipEntry {
  name: string;
  method: 0 | 8; // STORED or DEFLATE
  crc32: number;
  compressedSize: number;
  size: number;
  headerOffset: number;
  dataOffset: number;
}

const SIG_LOCAL = 0x04034b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_END = 0x06054b50;
const SIG_END64 = 0x06064b50;
const SIG_LOCATOR64 = 0x07064b50;
const END_SIZE = 22;
const CENTRAL_SIZE = 46;
const LOCAL_SIZE = 30;

/** DEFLATE cannot expand more than about 1032:1; a record claiming more is a bomb, not a file. */
const MAX_DEFLATE_RATIO = 1032;
/** All inflated records of one archive together: PyTorch's are code and pickles, a few MB at most. */
const INFLATE_BUDGET = 256 * 1024 * 1024;

const utf8 = new TextDecoder('utf-8', { fatal: true });
const latin1 = new TextDecoder('latin1');

export class ZipArchive {
  readonly entries = new Map<string, ZipEntry>();
  private inflated = 0;
  private readonly verified = new Set<string>();

  private constructor(private readonly bytes: Uint8Array) {}

  /** Reads and checks the central directory and every local header. */
  static open(bytes: Uint8Array): ZipArchive {
    const zip = new ZipArchive(bytes);
    zip.readDirectory();
    return zip;
  }

  /** A record's bytes: a view for STORED records, a bounded inflate for DEFLATE; CRC checked once. */
  read(name: string): Uint8Array {
    const entry = this.entries.get(name);
    check(entry !== undefined, `has no record ${quote(name)}`);
    const raw = this.bytes.subarray(entry.dataOffset, entry.dataOffset + entry.compressedSize);
    let data: Uint8Array = raw;
    if (entry.method === 8) {
      check(entry.size <= entry.compressedSize * MAX_DEFLATE_RATIO + 1024,
        () => `record ${quote(name)} claims ${entry.size} bytes from ${entry.compressedSize} compressed (a zip bomb?)`);
      check(this.inflated + entry.size <= INFLATE_BUDGET,
        () => `record ${quote(name)} would inflate the archive past ${INFLATE_BUDGET} bytes`);
      try {
        data = entry.size === 0 ? new Uint8Array(0) : zlib.inflateRawSync(raw, { maxOutputLength: entry.size });
      } catch (err) {
        check(false, `record ${quote(name)} does not inflate to its declared ${entry.size} bytes ` +
          `(${(err as Error).message.split('\n')[0]})`);
      }
      check(data.length === entry.size,
        () => `record ${quote(name)} inflates to ${data.length} bytes, its header says ${entry.size}`);
      this.inflated += entry.size;
    }
    if (!this.verified.has(name) && typeof zlib.crc32 === 'function') {
      check((zlib.crc32(data) >>> 0) === entry.crc32, `record ${quote(name)} is damaged (its CRC-32 does not match)`);
      this.verified.add(name);
    }
    return data;
  }

  private readDirectory(): void {
    const { bytes } = this;
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const size = bytes.length;
    check(size >= END_SIZE, `is ${size} bytes, too short for a zip`);

    // The end record: the last one whose comment runs exactly to the end of the file.
    let end = -1;
    for (let p = size - END_SIZE; p >= Math.max(0, size - END_SIZE - 0xffff); p--) {
      if (view.getUint32(p, true) === SIG_END && p + END_SIZE + view.getUint16(p + 20, true) === size) {
        end = p;
        break;
      }
    }
    check(end >= 0, 'has no zip end record (truncated, or not a zip)');
    check(view.getUint16(end + 4, true) === 0 && view.getUint16(end + 6, true) === 0, 'is a multi-disk zip');
    let count = view.getUint16(end + 10, true);
    let cdSize = view.getUint32(end + 12, true);
    let cdOffset = view.getUint32(end + 16, true);
    let cdLimit = end; // the directory must end before what follows it

    const locator = end - 20;
    if (locator >= 0 && view.getUint32(locator, true) === SIG_LOCATOR64) {
      const end64 = u64(view, locator + 8, 'the zip64 end record offset');
      check(end64 + 56 <= locator, `its zip64 end record offset ${end64} is past the end of the directory`);
      check(view.getUint32(end64, true) === SIG_END64, `has no zip64 end record at offset ${end64}`);
      count = u64(view, end64 + 32, 'the zip64 entry count');
      cdSize = u64(view, end64 + 40, 'the zip64 directory size');
      cdOffset = u64(view, end64 + 48, 'the zip64 directory offset');
      cdLimit = end64;
    } else {
      check(count !== 0xffff && cdSize !== 0xffffffff && cdOffset !== 0xffffffff,
        'says it is a zip64 file but has no zip64 end record');
    }
    check(cdOffset <= cdLimit && cdSize <= cdLimit - cdOffset,
      () => `its central directory (offset ${cdOffset}, ${cdSize} bytes) is past the end of the file (${size} bytes)`);
    check(count <= cdSize / CENTRAL_SIZE, () => `its central directory cannot hold the ${count} entries it claims`);

    const list: ZipEntry[] = [];
    let p = cdOffset;
    const cdEnd = cdOffset + cdSize;
    for (let i = 0; i < count; i++) {
      check(p + CENTRAL_SIZE <= cdEnd && view.getUint32(p, true) === SIG_CENTRAL,
        () => `central directory entry ${i} at offset ${p} is damaged`);
      const flags = view.getUint16(p + 8, true);
      const method = view.getUint16(p + 10, true);
      const crc32 = view.getUint32(p + 16, true);
      let compressedSize = view.getUint32(p + 20, true);
      let entrySize = view.getUint32(p + 24, true);
      const nameLength = view.getUint16(p + 28, true);
      const extraLength = view.getUint16(p + 30, true);
      const commentLength = view.getUint16(p + 32, true);
      const disk = view.getUint16(p + 34, true);
      let headerOffset = view.getUint32(p + 42, true);
      const next = p + CENTRAL_SIZE + nameLength + extraLength + commentLength;
      check(next <= cdEnd, () => `central directory entry ${i} runs past the directory`);
      const nameBytes = bytes.subarray(p + CENTRAL_SIZE, p + CENTRAL_SIZE + nameLength);
      const name = decodeName(nameBytes, flags, i);

      // zip64 extended information: the 64-bit values, in this order, of the fields set to all ones.
      const extraEnd = p + CENTRAL_SIZE + nameLength + extraLength;
      for (let e = p + CENTRAL_SIZE + nameLength; e + 4 <= extraEnd;) {
        const id = view.getUint16(e, true);
        const length = view.getUint16(e + 2, true);
        check(e + 4 + length <= extraEnd, () => `record ${quote(name)} has a damaged extra field`);
        if (id === 1) {
          let q = e + 4;
          const take = (what: string): number => {
            check(q + 8 <= e + 4 + length, () => `record ${quote(name)}'s zip64 field lacks ${what}`);
            const value = u64(view, q, `record ${quote(name)}'s ${what}`);
            q += 8;
            return value;
          };
          if (entrySize === 0xffffffff) entrySize = take('its size');
          if (compressedSize === 0xffffffff) compressedSize = take('its compressed size');
          if (headerOffset === 0xffffffff) headerOffset = take('its header offset');
        }
        e += 4 + length;
      }

      check(disk === 0 || disk === 0xffff, () => `record ${quote(name)} is on another disk`);
      check((flags & 0x41) === 0, () => `record ${quote(name)} is encrypted`);
      check(method === 0 || method === 8, () => `record ${quote(name)} uses compression method ${method} ` +
        '(only stored and deflate are read)');
      check(method !== 0 || compressedSize === entrySize,
        () => `stored record ${quote(name)} has a compressed size (${compressedSize}) unlike its size (${entrySize})`);
      check(!this.entries.has(name), () => `has two records named ${quote(name)}`);

      // The local header: inside the file, before the directory, and naming the same record.
      check(headerOffset + LOCAL_SIZE <= cdOffset,
        () => `record ${quote(name)}'s local header offset ${headerOffset} is past the end of its data ` +
          `(the directory starts at ${cdOffset})`);
      check(view.getUint32(headerOffset, true) === SIG_LOCAL,
        () => `record ${quote(name)} has no local header at offset ${headerOffset}`);
      const localMethod = view.getUint16(headerOffset + 8, true);
      const localNameLength = view.getUint16(headerOffset + 26, true);
      const localExtraLength = view.getUint16(headerOffset + 28, true);
      const dataOffset = headerOffset + LOCAL_SIZE + localNameLength + localExtraLength;
      check(localMethod === method && localNameLength === nameLength && dataOffset <= cdOffset &&
        Buffer.compare(bytes.subarray(headerOffset + LOCAL_SIZE, headerOffset + LOCAL_SIZE + nameLength), nameBytes) === 0,
      () => `record ${quote(name)}'s local header does not match the central directory`);
      check(compressedSize <= cdOffset - dataOffset,
        () => `record ${quote(name)} claims ${compressedSize} bytes at offset ${dataOffset}, past the end of its data ` +
          `(the directory starts at ${cdOffset}; the file has ${size} bytes)`);

      const entry: ZipEntry = { name, method, crc32, compressedSize, size: entrySize, headerOffset, dataOffset };
      this.entries.set(name, entry);
      list.push(entry);
      p = next;
    }

    // Records may not share bytes: each one's header and data end before the next header starts.
    list.sort((a, b) => a.headerOffset - b.headerOffset);
    for (let i = 1; i < list.length; i++) {
      const prev = list[i - 1];
      check(prev.dataOffset + prev.compressedSize <= list[i].headerOffset,
        () => `records ${quote(prev.name)} and ${quote(list[i].name)} overlap`);
    }
  }
}

function u64(view: DataView, offset: number, what: string): number {
  const value = view.getBigUint64(offset, true);
  check(value <= BigInt(Number.MAX_SAFE_INTEGER), () => `${what} (${value}) is out of range`);
  return Number(value);
}

/** A record name as a path inside the archive: relative, no '..', no drive or backslash tricks. */
function decodeName(raw: Uint8Array, flags: number, index: number): string {
  let name: string;
  try {
    name = (flags & 0x800 ? utf8 : latin1).decode(raw);
  } catch {
    check(false, `central directory entry ${index} has a name that is not UTF-8`);
  }
  check(name.length > 0, `central directory entry ${index} has an empty name`);
  check(!/[\0\\]/.test(name) && !name.startsWith('/') && !/^[A-Za-z]:/.test(name) &&
    !name.split('/').includes('..'), () => `record name ${quote(name)} is not a relative path inside the archive`);
  return name;
}
