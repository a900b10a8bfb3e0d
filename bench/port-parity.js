'use strict';
// Parity with the PyTorch port's own inference.py (dajes/frame-interpolation-pytorch): its frames,
// as floats before it quantizes them, against Interpolator's on the same float inputs, per frame:
// max and mean |ours - its| over every pixel and channel (numpy, bench/port_parity.py compare).
// Usage:
//   node bench/port-parity.js --port PORT_CHECKOUT --model film_net_fp32.pt[,film_net_fp16.pt]
//     [--photos A,B] [--sizes 256x192,249x187,1024x768] [--recursions 2] [--times 0.25,0.5,0.75]
//     [--threads 2] [--engine auto|onednn|torchscript] [--keep]
// --photos defaults to the port's photos/one.png,two.png (Google FILM's two photos). For each size,
// in a new temporary folder: the photos resized (cv2 INTER_AREA), the port's *.py copied, and its
// inference.py run there by bench/port_parity.py (its own inference(), --frames 2^recursions - 1,
// with its model, bisect and video writer wrapped to keep the float frames; and the --times made
// one call each with its own load_image and forward). Ours: Interpolator.load(model, { device:
// 'cpu', engine }) (--engine, default auto), on the float inputs inference.py read, with { recursions,
// recursionPadding: 'prediction' } (inference.py's recursion: the padded prediction fed back), with
// { recursions } (the default, 'zeros': Google FILM's), and with { time: times }. Needs /usr/bin/python3
// with torch, numpy, cv2 and tqdm (inference.py's imports; Debian: python3-torch python3-opencv
// python3-tqdm). Nothing of the port is kept (--keep leaves the temporary folders and says where).
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const { Interpolator } = require('..');
const { native } = require('../dist/native');
const { table, machineLines, now, cliOptions } = require('./common');

const HELPER = path.join(__dirname, 'port_parity.py');

function options() {
  const values = cliOptions({ port: undefined, model: undefined, photos: undefined, sizes: '256x192,249x187,1024x768',
    recursions: 2, times: '0.25,0.5,0.75', threads: 2, engine: 'auto', keep: false });
  if (!values.port || !values.model) throw new RangeError('--port DIR (a checkout of the port) and --model FILE[,FILE] are required');
  const port = path.resolve(values.port);
  if (!fs.existsSync(path.join(port, 'inference.py'))) throw new RangeError(`--port: no inference.py in ${port}`);
  const sizes = values.sizes.split(',').map((s) => {
    const m = /^(\d+)x(\d+)$/.exec(s);
    if (!m) throw new RangeError(`--sizes: expected WxH, got '${s}'`);
    return { width: Number(m[1]), height: Number(m[2]) };
  });
  const photos = (values.photos ?? ['one.png', 'two.png'].map((p) => path.join(port, 'photos', p)).join(',')).split(',');
  if (photos.length !== 2) throw new RangeError('--photos: expected two files, A,B');
  const times = values.times.split(',').filter(Boolean).map(Number);
  if (!Number.isInteger(values.recursions) || values.recursions < 1) throw new RangeError('--recursions: expected an integer >= 1');
  return { port, models: values.model.split(',').map((m) => path.resolve(m)), photos: photos.map((p) => path.resolve(p)),
    sizes, recursions: values.recursions, times, threads: values.threads, engine: values.engine, keep: values.keep };
}

function cpuinfo() {
  const text = fs.readFileSync('/proc/cpuinfo', 'utf8');
  const model = (text.match(/^model name\s*:\s*(.*)$/m) ?? ['', 'unknown'])[1];
  const flags = (text.match(/^flags\s*:\s*(.*)$/m) ?? ['', ''])[1].split(' ');
  const isa = ['avx512f', 'avx512_bf16', 'amx_tile', 'avx2', 'fma'].filter((f) => flags.includes(f)).join(' ') || 'no AVX';
  return `CPU (/proc/cpuinfo): ${model}; ISA: ${isa}`;
}

function python(args) {
  const r = spawnSync('/usr/bin/python3', [HELPER, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.status !== 0) throw new Error(`port_parity.py ${args[0]} failed (${r.status}):\n${r.stderr.slice(-3000)}`);
  return r.stdout;
}

function gitHead(dir) {
  const r = spawnSync('git', ['-C', dir, 'rev-parse', 'HEAD'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : 'not a git checkout';
}

function readF32(file, shape) {
  const bytes = fs.readFileSync(file);
  const data = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  if (data.length !== shape.reduce((x, y) => x * y)) throw new Error(`${file}: ${data.length} values, expected ${shape}`);
  return { data, shape };
}

const writeF32 = (file, t) => fs.writeFileSync(file, Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength));

/** The recursion depth at which time k / 2^K is made (0.5: 1, 0.25 and 0.75: 2, ...). */
function depthOf(k, K) {
  let d = K;
  while (k % 2 === 0) { k /= 2; d--; }
  return d;
}

async function main() {
  const o = options();
  const frames = 2 ** o.recursions - 1;
  const rows = [];
  const engines = [];
  process.stderr.write(`${cpuinfo()}\n`);
  for (const model of o.models) {
    const film = await Interpolator.load(model, { device: 'cpu', threads: o.threads, engine: o.engine });
    const name = path.basename(model);
    engines.push(`${name}: ${film.info.dtype}, engine ${film.info.engine}, optimized ${film.info.optimized}, codeRun ${film.info.codeRun}`);
    if (o.engine === 'auto' && film.info.engine !== 'onednn') process.stderr.write(`WARNING: ${name} runs on engine '${film.info.engine}', not the fused engine\n`);
    for (const { width: w, height: h } of o.sizes) {
      const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'film-port-parity-'));
      try {
        const port = path.join(tmp, 'port');
        const run = path.join(tmp, 'run');
        fs.mkdirSync(port);
        fs.mkdirSync(run);
        for (const f of fs.readdirSync(o.port)) if (f.endsWith('.py')) fs.copyFileSync(path.join(o.port, f), path.join(port, f));
        python(['resize', '--photos', o.photos.join(','), '--size', `${w}x${h}`, '--out', run]);
        process.stderr.write(`${name} ${w}x${h}: inference.py --frames ${frames} and times ${o.times} in ${tmp}...`);
        let t = now();
        python(['run', '--port', port, '--model', model, '--dir', run, '--frames', String(frames), '--times', o.times.join(',')]);
        process.stderr.write(` ${((now() - t) / 1000).toFixed(1)} s; ours...`);
        t = now();
        const a = readF32(path.join(run, 'in_a.f32'), [1, 3, h, w]);
        const b = readF32(path.join(run, 'in_b.f32'), [1, 3, h, w]);
        // inference.py's recursion (the padded prediction fed back), then the default ('zeros')
        const rec = await film.interpolate(a, b, { recursions: o.recursions, recursionPadding: 'prediction' });
        rec.forEach((f, i) => writeF32(path.join(run, `ours_rec_${i + 1}.prediction.f32`), f));
        const zeros = await film.interpolate(a, b, { recursions: o.recursions });
        zeros.forEach((f, i) => writeF32(path.join(run, `ours_rec_${i + 1}.f32`), f));
        const direct = await film.interpolate(a, b, { time: o.times });
        direct.forEach((f, i) => writeF32(path.join(run, `ours_t_${i}.f32`), f));
        process.stderr.write(` ${((now() - t) / 1000).toFixed(1)} s\n`);
        for (const r of JSON.parse(python(['compare', '--dir', run]))) {
          const m = /^ours_(rec|t)_(\d+)(\.prediction)?\.f32$/.exec(r.ours);
          const k = Number(m[2]);
          const time = m[1] === 'rec' ? k / (frames + 1) : o.times[k];
          const call = m[1] === 't' ? [`time: [${o.times}]`, 'one call at t (its load_image, forward)']
            : [`recursions: ${o.recursions}, recursionPadding: '${m[3] ? 'prediction' : 'zeros'}'${m[3] ? '' : ' (default)'}`,
              `inference.py --frames ${frames}`];
          rows.push({ sort: [o.models.indexOf(model), o.sizes.findIndex((s) => s.width === w && s.height === h),
            m[1] === 'rec' ? (m[3] ? 0 : 1) : 2, time],
          cells: [name, `${w}x${h}`, ...call, String(time), m[1] === 'rec' ? String(depthOf(k, o.recursions)) : '-',
            r.max.toExponential(2), r.mean.toExponential(2), r.inside.toFixed(3),
            r.bytes_off === undefined ? '-' : `${r.bytes_max} (${r.bytes_off})`] });
        }
      } finally {
        if (o.keep) process.stderr.write(`  kept ${tmp}\n`);
        else fs.rmSync(tmp, { recursive: true, force: true });
      }
    }
    film.dispose();
  }
  const cmp = (x, y) => (x < y ? -1 : x > y ? 1 : 0);
  rows.sort((x, y) => x.sort.reduce((c, v, i) => c || cmp(v, y.sort[i]), 0) || 0);
  const torch = spawnSync('/usr/bin/python3', ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8' }).stdout.trim();
  console.log(machineLines([cpuinfo(), `${native().build} build, libtorch ${native().torchVersion ?? 'none'}; Python torch ${torch}`,
    `port: ${o.port} at ${gitHead(o.port)}; photos: ${o.photos.join(', ')}`, ...engines,
    `${o.threads} threads; times ${o.times.join(', ')}; recursions ${o.recursions} (inference.py --frames ${frames})`]).join('\n'));
  console.log();
  console.log(table(['file', 'size', 'ours', 'inference.py', 'time', 'depth', 'max abs', 'mean abs', 'its values in (0,1)',
    'its video frame: max (count) of trunc(ours * 255) - its byte'], rows.map((r) => r.cells)));
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
