// Must NOT compile (test/65.interpolate.test.js checks tsc reports each line): Interpolator.load
// takes only the options it accepts at run time, and interpolate's recursionPadding goes with recursions.
import { Interpolator, type InterpolatorLoadOptions, type RecursionPadding, type Tensor4 } from 'film-features';

export async function bad(file: string, a: Tensor4): Promise<void> {
  await Interpolator.load(file, { device: 'cpu', precision: 'fp16' });
  await Interpolator.load(file, { batchWindowMs: 2 });
  await Interpolator.load(file, { maxBatch: 4 });
  const fine: InterpolatorLoadOptions = { device: 'cuda:0', threads: 2, half: true, engine: 'torchscript', precision: 'fp32' };
  const film = await Interpolator.load(file, fine);
  await film.interpolate(a, a, { time: 0.5, recursionPadding: 'prediction' });
  await film.interpolate(a, a, { recursions: 2, recursionPadding: 'reflect' });
  const padding: RecursionPadding = 'prediction';
  const frames: Tensor4[] = await film.interpolate(a, a, { recursions: 2, recursionPadding: padding });
  await film.interpolate(a, a, { recursions: 2, recursionPadding: 'zeros' });
  void frames;
}
