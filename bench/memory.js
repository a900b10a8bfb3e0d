'use strict';
// Memory: RSS over many small extracts whose outputs are dropped at once, for the zero-copy path and
// the copying path (FILM_FEATURES_COPY_OUTPUTS=1). Each path runs in its own child process.
// Usage: node --expose-gc bench/memory.js [--iterations 1000] [--limit-mb 20]
const { spawnSync } = require('node:child_process');
const { parseArgs } = require('node:util');

const { gcHook, table, machineLines, fmt } = require('./common');

const { values } = parseArgs({
  options: {
    iterations: { type: 'string', default: '1000' },
    'limit-mb': { type: 'string', default: '20' },
    child: { type: 'boolean', default: false },
  },
});
const iterations = Number(values.iterations);
const limitMb = Number(values['limit-mb']);
const SIZE = 64;
const LEVELS = 4;
const rssMb = () => process.memoryUsage.rss() / 2 ** 20;

/** In the child: prints RSS lines, then one JSON line { before, after }. */
async function measure() {
  const { FeatureExtractor } = require('..');
  const { randomTensor } = require('./common');
  const gc = gcHook();
  const fx = await FeatureExtractor.load(undefined, { device: 'cpu' });
  const image = randomTensor(1, SIZE, SIZE);
  const settle = async () => {
    // Two passes with a turn of the event loop between: finalizers free the tensors after the first.
    gc();
    await new Promise((resolve) => setImmediate(resolve));
    gc();
  };
  for (let i = 0; i < 20; i++) await fx.extract(image, { levels: LEVELS });
  await settle();
  const before = rssMb();
  console.log(`  before: ${fmt(before)} MB`);
  for (let i = 1; i <= iterations; i++) {
    await fx.extract(image, { levels: LEVELS });
    if (i % 100 === 0) console.log(`  ${String(i).padStart(5)}: ${fmt(rssMb())} MB`);
  }
  await settle();
  const after = rssMb();
  console.log(`  after gc: ${fmt(after)} MB`);
  fx.dispose();
  console.log(JSON.stringify({ before, after }));
}

function main() {
  const variants = [
    { name: 'zero-copy outputs', env: {} },
    { name: 'copied outputs (FILM_FEATURES_COPY_OUTPUTS=1)', env: { FILM_FEATURES_COPY_OUTPUTS: '1' } },
  ];
  const rows = [];
  const logs = [];
  let failed = false;
  for (const variant of variants) {
    console.error(`${variant.name} ...`);
    const r = spawnSync(process.execPath, ['--expose-gc', __filename, '--child', '--iterations', String(iterations)], {
      encoding: 'utf8',
      env: { ...process.env, FILM_FEATURES_COPY_OUTPUTS: '', ...variant.env },
    });
    if (r.status !== 0) throw new Error(`${variant.name}: child failed (${r.status ?? r.signal}):\n${r.stdout}${r.stderr}`);
    const lines = r.stdout.trimEnd().split('\n');
    const { before, after } = JSON.parse(lines.pop());
    const growth = after - before;
    const pass = growth < limitMb;
    failed ||= !pass;
    logs.push(`${variant.name}:`, ...lines);
    rows.push([variant.name, fmt(before), fmt(after), fmt(growth), pass ? 'PASS' : 'FAIL']);
  }
  console.log(machineLines([`${iterations} extracts of ${SIZE}x${SIZE} (${LEVELS} levels), outputs dropped; ` +
    `RSS after 20 warm-up extracts and gc, every 100 extracts, and after a final gc`]).join('\n'));
  console.log();
  console.log(logs.join('\n'));
  console.log();
  console.log(table(['outputs', 'RSS before MB', 'RSS after MB', 'growth MB', `growth < ${limitMb} MB`], rows));
  process.exitCode = failed ? 1 : 0;
}

if (values.child) {
  measure().catch((err) => {
    console.error(err);
    process.exit(1);
  });
} else {
  main();
}
