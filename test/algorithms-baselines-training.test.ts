import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { ict } from '../src/algorithms/ict';
import { meanTeacher } from '../src/algorithms/mean-teacher';
import { mixupSsl } from '../src/algorithms/mixup';
import { piModel } from '../src/algorithms/pi-model';
import { pseudoLabel } from '../src/algorithms/pseudo-label';
import { supervisedMixup } from '../src/algorithms/supervised-mixup';
import type { Algorithm } from '../src/algorithms/types';
import { vat } from '../src/algorithms/vat';
import { selectBackend } from '../src/backend/select';
import { resolveSettings, toTrainConfig } from '../src/train/config';
import { train } from '../src/train/trainer';
import { trainingBackends } from './helpers/backends';
import { syntheticData } from './helpers/synthetic';

/**
 * Each baseline through the shared training loop (passed as an object, not by name): 64 steps of
 * a tiny WRN on the synthetic band images lower the loss, the tensor count stays flat, the run
 * directory is named as the original's, and the original's loss scalars are logged. The EMA decay
 * is 0.9 so that the teachers of Mean Teacher and ICT follow the student within so short a run.
 */

const CASES: Array<{ algo: Algorithm; runName: string; scalars: string[] }> = [
  {
    algo: piModel,
    runName: 'PiModel_archresnet_batch16_consistency_weight10.0_ema0.9_filters4_lr0.01_nclass2_repeat1_scales1_smoothing0.1_warmup_pos0.4_wd0.02',
    scalars: ['losses/pm', 'losses/xe'],
  },
  {
    algo: meanTeacher,
    runName: 'MeanTeacher_archresnet_batch16_consistency_weight50.0_ema0.9_filters4_lr0.01_nclass2_repeat1_scales1_smoothing0.001_warmup_pos0.4_wd0.02',
    scalars: ['losses/mt', 'losses/xe'],
  },
  {
    algo: ict,
    runName: 'ICT_archresnet_batch16_beta0.5_consistency_weight50.0_ema0.9_filters4_lr0.01_nclass2_repeat1_scales1_warmup_pos0.4_wd0.02',
    scalars: ['losses/mt', 'losses/xe'],
  },
  {
    algo: pseudoLabel,
    runName: 'PseudoLabel_archresnet_batch16_consistency_weight1.0_ema0.9_filters4_lr0.01_nclass2_repeat1_scales1_smoothing0.1_threshold0.95_warmup_pos0.4_wd0.02',
    scalars: ['losses/pl', 'losses/xe'],
  },
  {
    algo: vat,
    runName: 'VAT_archresnet_batch16_ema0.9_entmin_weight0.06_filters4_lr0.01_nclass2_repeat1_scales1_smoothing0.1_vat0.3_vat_eps6.0_warmup_pos0.4_wd0.02',
    scalars: ['losses/entmin', 'losses/vat', 'losses/xe'],
  },
  {
    algo: mixupSsl,
    runName: 'Mixup_archresnet_batch16_beta0.5_ema0.9_filters4_lr0.01_nclass2_repeat1_scales1_wd0.02',
    scalars: ['losses/xe', 'losses/xeu'],
  },
  {
    algo: supervisedMixup,
    runName: 'FSMixup_archresnet_batch16_beta0.5_ema0.9_filters4_lr0.01_nclass2_repeat1_scales1_wd0.002',
    scalars: ['losses/xe'],
  },
];

const backend = trainingBackends()[0];
let dir: string;

beforeAll(async () => {
  await selectBackend(backend);
});
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-baselines-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

test.each(CASES.map((c) => [c.algo.name, c] as const))(`%s training lowers the loss on ${backend}`, async (_name, c) => {
  const settings = resolveSettings(c.algo, {}, {
    arch: 'resnet',
    filters: 4,
    scales: 1,
    repeat: 1,
    batch: 16,
    ema: 0.9,
    lr: 0.01,
    train_kimg: 1,
    report_kimg: 1,
    save_kimg: 1,
    eval_batch: 16,
  });
  // pad-and-crop shifts make the two views of an unlabelled image differ
  const cfg = toTrainConfig(c.algo, settings, { trainDir: dir, seed: 3, augment: 'mnist' });
  const losses: number[] = [];
  const counts: number[] = [];
  const r = await train(cfg, syntheticData(), {
    onStep: (_, loss) => {
      losses.push(loss);
      counts.push(tf.memory().numTensors);
    },
  });
  expect(losses).toHaveLength(64);
  const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
  const first = mean(losses.slice(0, 10));
  const last = mean(losses.slice(-10));
  expect([c.algo.name, last < 0.75 * first]).toEqual([c.algo.name, true]);
  expect(counts[counts.length - 1]).toBe(counts[1]);
  expect(path.basename(r.runDir)).toBe(c.runName);
  expect(Object.keys(r.reports[r.reports.length - 1].losses).sort()).toEqual(c.scalars);
});
