// Must NOT compile (test/55.inputs.test.js checks tsc reports each line): the types are not `any`.
import { FeatureExtractor } from 'film-features';

export async function bad(fx: FeatureExtractor): Promise<void> {
  await fx.extract({ data: new Uint8Array(3), width: 1, height: 1, channels: 5 });
  await fx.extract({ data: new Float64Array(3), shape: [1, 3, 1, 1] });
  await fx.extract({ data: new Float32Array(3), shape: [1, 3, 1, 1] }, { level: 3 });
}
