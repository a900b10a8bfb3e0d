'use strict';
// What --fsync costs per frame: lib/batch's writer (writeUnit) writing one frame's files, with and
// without flushing each file and the folders to the disk, taking turns frame by frame.
// node bench/fsync.js [--dir DIR] [--frames N] [--mb M,...]: M = megabytes per frame (default: the
// float16 --save-levels 0,2,4,6 output of a 640x448 frame, 55 MB, and of a 256x256 one, 12.6 MB).
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const { writeUnit } = require('../dist/batch/output');
const { median, machineLines } = require('./common');

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : fallback;
}
const FRAMES = Number(arg('frames', 20));
const SIZES = arg('mb', '55,12.6').split(',').map(Number);
const dir = fs.mkdtempSync(path.join(arg('dir', os.tmpdir()), 'film-fsync-'));

/** A frame's files as the pipeline writes them: 4 levels in the ratio of their sizes (writeUnit adds meta.json). */
function files(mb) {
  const total = Math.round(mb * 1e6);
  const shares = [64, 448 / 16, 1 * 960 / 256, 960 / 4096].map((s) => s / (64 + 448 / 16 + 960 / 256 + 960 / 4096));
  return [
    ...shares.map((s, i) => ({ name: `level${2 * i}.npy`, chunks: [new Uint8Array(Math.round(total * s)).fill(i + 1)] })),
  ];
}

async function main() {
  console.log(machineLines().join('\n'));
  console.log(`folder: ${dir} (${fs.statfsSync ? `fs type 0x${fs.statfsSync(dir).type.toString(16)}` : ''})`);
  try {
    for (const mb of SIZES) {
      const times = { plain: [], fsync: [] };
      const f = files(mb);
      for (let i = 0; i < FRAMES; i++) {
        for (const mode of i % 2 ? ['fsync', 'plain'] : ['plain', 'fsync']) {
          const out = path.join(dir, `${mode}-${i}`);
          const t = performance.now();
          await writeUnit(out, f, { source: '/bench', frame: false, fsync: mode === 'fsync', meta: { files: [...f.map((x) => x.name), 'meta.json'] } });
          times[mode].push(performance.now() - t);
          fs.rmSync(out, { recursive: true }); // keep the disk from filling; not timed
        }
      }
      const p = median(times.plain);
      const s = median(times.fsync);
      console.log(`${mb} MB per frame, ${FRAMES} frames each: without --fsync ${p.toFixed(1)} ms (${(mb / p * 1000).toFixed(0)} MB/s), ` +
        `with ${s.toFixed(1)} ms (${(mb / s * 1000).toFixed(0)} MB/s): +${(s - p).toFixed(1)} ms per frame, x${(s / p).toFixed(2)}`);
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
