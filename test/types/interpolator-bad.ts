// Must NOT compile (test/65.interpolate.test.js checks tsc reports each line): Interpolator.load
// takes only the options it accepts at run time.
import { Interpolator, type InterpolatorLoadOptions } from 'film-features';

export async function bad(file: string): Promise<void> {
  await Interpolator.load(file, { device: 'cpu', precision: 'bf16' });
  await Interpolator.load(file, { batchWindowMs: 2 });
  await Interpolator.load(file, { maxBatch: 4 });
  const fine: InterpolatorLoadOptions = { device: 'cuda:0', threads: 2, half: true, engine: 'torchscript' };
  await Interpolator.load(file, fine);
}
