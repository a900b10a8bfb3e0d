'use strict';
// Child script: how far RSS rises during one recursive interpolation of 8-bit frames (argv: model,
// side, k), sampled from the JS thread, which is free while the run is on the addon's executor.
const path = require('node:path');
const { Interpolator } = require(path.resolve(__dirname, '../..'));

(async () => {
  const [model, side, k] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4])];
  const frame = (seed) => ({ data: Uint8Array.from({ length: side * side * 3 }, (_, i) => (i * seed) % 251), width: side, height: side, channels: 3 });
  const film = await Interpolator.load(model, { device: 'cpu', threads: 1 });
  const a = frame(7);
  const b = frame(13);
  await film.interpolate(a, b); // warm: the graph's first runs profile and specialise it
  await film.interpolate(a, b);
  const base = process.memoryUsage().rss;
  let peak = base;
  const timer = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss); }, 1);
  const t = performance.now();
  const frames = await film.interpolate(a, b, { recursions: k });
  peak = Math.max(peak, process.memoryUsage().rss);
  clearInterval(timer);
  process.stdout.write(JSON.stringify({ base, peak, frames: frames.length, ms: performance.now() - t }));
})();
