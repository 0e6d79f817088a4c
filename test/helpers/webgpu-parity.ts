import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { Algorithm } from '../../src/algorithms/types';
import { selectBackend } from '../../src/backend/select';
import { resolveSettings, toTrainConfig } from '../../src/train/config';
import { train } from '../../src/train/trainer';
import { syntheticData } from './synthetic';

/**
 * The losses of the first steps of the shared training loop on a backend, for comparing webgpu
 * with wasm (test/webgpu-algorithms.test.ts, test/webgpu-models.test.ts). Three steps, so that the
 * second and third losses depend on the first updates (optimiser, EMA, batch-norm statistics,
 * per-sample state). Losses rather than weights: biases that feed a batch norm get a gradient that
 * is rounding noise on either backend, which Adam turns into steps of either sign, without changing
 * the loss.
 */
export const PARITY_STEPS = 3;
export const PARITY_TOL = 2e-4;

export async function firstLosses(backend: string, algo: Algorithm, arch: string, imageSize: number): Promise<number[]> {
  await selectBackend(backend);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-webgpu-parity-'));
  try {
    const shape: Record<string, number> = arch === 'resnet' ? { filters: 4, scales: 1, repeat: 1 } : arch === 'cnn13' ? { filters: 4, scales: 3 } : { filters: 4, scales: 2 };
    const s = resolveSettings(algo, {}, { arch, ...shape, batch: 8, train_kimg: 1, report_kimg: 1, save_kimg: 1, eval_batch: 16, lr: 0.01 });
    const cfg = toTrainConfig(algo, s, { trainDir: dir, seed: 3, augment: 'none' });
    const losses: number[] = [];
    await train(cfg, syntheticData(2, imageSize), { onStep: (_, loss) => losses.push(loss), shouldStop: () => losses.length >= PARITY_STEPS });
    return losses;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Same losses within `tol` (relative, absolute below 1); the first step, which has no update to amplify, within PARITY_TOL. */
export function expectSameLosses(got: number[], want: number[], tol = PARITY_TOL): void {
  expect(got).toHaveLength(PARITY_STEPS);
  const rel = (i: number) => Math.abs(got[i] - want[i]) / Math.max(1, Math.abs(want[i]));
  expect(Math.max(...want.map((_, i) => rel(i)))).toBeLessThan(tol);
  expect(rel(0)).toBeLessThan(PARITY_TOL);
}
