import * as fs from 'fs';
import * as path from 'path';
import * as tf from '@tensorflow/tfjs';
import { ALGORITHMS, getAlgorithm } from '../src/algorithms/registry';
import { interleave, interleaveOffsets, linearRamp, sharpen } from '../src/algorithms/mixmatch';
import { Command } from 'commander';
import { algorithmFlags, register as registerTrain } from '../src/commands/train';
import { readConfigFile, resolveSettings, SHARED, toTrainConfig } from '../src/train/config';
import { runDirFor } from '../src/train/trainer';
import { runName } from '../src/train/run-name';
import { pyFloat } from '../src/util/python-float';
import { UserError } from '../src/errors';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

test('every algorithm file is registered', () => {
  const dir = path.join(__dirname, '..', 'src', 'algorithms');
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.ts') && !['types.ts', 'registry.ts'].includes(f));
  const registered = new Set(ALGORITHMS.map((a) => a.name));
  for (const f of files) {
    const mod = require(path.join(dir, f)) as Record<string, unknown>;
    const algos = Object.values(mod).filter((v): v is { name: string; loss: unknown } => !!v && typeof v === 'object' && 'loss' in v && 'name' in v);
    expect([f, algos.length > 0]).toEqual([f, true]);
    for (const a of algos) expect(registered.has(a.name)).toBe(true);
  }
  expect(() => getAlgorithm('nope')).toThrow(/unknown --algo 'nope'; valid: mixmatch, realmix, fixmatch, .*supervised/);
});

test('interleave groups follow the original offsets and swap back', () => {
  expect(interleaveOffsets(64, 2)).toEqual([0, 21, 42, 64]);
  expect(interleaveOffsets(8, 2)).toEqual([0, 2, 5, 8]);
  const xs = [0, 1, 2].map((k) => tf.tensor1d(Array.from({ length: 8 }, (_, i) => k * 100 + i)));
  const mixed = interleave(xs, 8);
  expect(Array.from(mixed[0].dataSync())).toEqual([0, 1, 102, 103, 104, 205, 206, 207]);
  expect(Array.from(mixed[1].dataSync())).toEqual([100, 101, 2, 3, 4, 105, 106, 107]);
  const back = interleave(mixed, 8);
  back.forEach((b, k) => expect(Array.from(b.dataSync())).toEqual(Array.from(xs[k].dataSync())));
});

test('sharpening and the linear ramp', () => {
  const q = sharpen(tf.tensor2d([[0.6, 0.4]]), 0.5).dataSync();
  expect(q[0]).toBeCloseTo(0.36 / 0.52, 6);
  expect(linearRamp(512, 1024)).toBe(0.5);
  expect(linearRamp(4096, 1024)).toBe(1);
});

test('run names follow the originals: class name and sorted key+value, floats as Python writes them', () => {
  expect(pyFloat(75)).toBe('75.0');
  expect(pyFloat(0.002)).toBe('0.002');
  expect(pyFloat(1e-5)).toBe('1e-05');
  expect(pyFloat(-1)).toBe('-1.0');
  const name = runName('MixMatch', [
    { name: 'wd', value: 0.02, type: 'float' },
    { name: 'arch', value: 'resnet', type: 'string' },
    { name: 'w_match', value: 75, type: 'float' },
    { name: 'batch', value: 64, type: 'int' },
  ]);
  expect(name).toBe('MixMatch_archresnet_batch64_w_match75.0_wd0.02');
});

test('hyperparameter precedence: defaults < --config < flags, and foreign settings are errors', () => {
  const mm = getAlgorithm('mixmatch');
  const s = resolveSettings(mm, { beta: 0.75, lr: 0.01 }, { lr: 0.003 });
  expect(s.hp.beta).toBe(0.75);
  expect(s.hp.w_match).toBe(100);
  expect(s.shared.lr).toBe(0.003);
  expect(() => resolveSettings(getAlgorithm('supervised'), {}, { w_match: 3 })).toThrow(UserError);
  expect(() => resolveSettings(mm, { batch: 1.5 }, {})).toThrow(/batch must be an integer/);
  const file = path.join(fs.mkdtempSync(path.join(require('os').tmpdir(), 'ssl-cfg-')), 'c.json');
  fs.writeFileSync(file, '{"w-match": 75}');
  expect(readConfigFile(file)).toEqual({ w_match: 75 });
  fs.writeFileSync(file, '{oops');
  expect(() => readConfigFile(file)).toThrow(/not valid JSON/);
});

test('every hyperparameter of every algorithm, and every shared setting, is a flag in --help', () => {
  const program = new Command();
  registerTrain(program);
  // help text wraps to the terminal width: compare with whitespace collapsed
  const help = program.commands.find((c) => c.name() === 'train')!.helpInformation().replace(/\s+/g, ' ');
  for (const a of ALGORITHMS) {
    for (const h of a.hparams) {
      expect([a.name, h.name, help.includes(`--${h.name.replace(/_/g, '-')} `)]).toEqual([a.name, h.name, true]);
      expect(help).toContain(`${a.name}: ${h.default}`);
    }
  }
  for (const s of SHARED) expect(help).toContain(`--${s.name.replace(/_/g, '-')} `);
  // per-algorithm shared defaults are spelled out
  expect(help).toMatch(/--optimizer <value> adam \(TF defaults\) or sgd [^-]*fixmatch: sgd\)/);
  expect(help).toMatch(/--tsa-compat \[bool\]/);
  expect(help).toMatch(/--class-mapping <json>/);
});

test('algorithms that share a hyperparameter name must agree on its type', () => {
  const a = { ...getAlgorithm('mixmatch'), name: 'a', hparams: [{ name: 'beta', type: 'float' as const, default: 0.5, help: 'x' }] };
  const b = { ...getAlgorithm('mixmatch'), name: 'b', hparams: [{ name: 'beta', type: 'int' as const, default: 1, help: 'x' }] };
  expect(() => algorithmFlags([a, b])).toThrow(/beta is float in a but int in b/);
  expect(algorithmFlags([a, a]).map((f) => f.help)).toEqual(['x (default a: 0.5, a: 0.5)']);
});

test('run names keep the originals\' spelling and add only the settings changed from an algorithm\'s recipe', () => {
  const data = { name: 'cifar10.3@250-5000', base: 'cifar10', nclass: 10, shape: { height: 32, width: 32, channels: 3 } };
  const name = (algo: string, flags: Record<string, number | string | boolean>) => {
    const a = getAlgorithm(algo);
    return path.basename(runDirFor(toTrainConfig(a, resolveSettings(a, {}, flags), { trainDir: '/x', seed: 1 }), data));
  };
  expect(name('mixmatch', { beta: 0.75, w_match: 75 })).toBe('MixMatch_archresnet_batch64_beta0.75_ema0.999_filters32_lr0.002_nclass10_repeat4_scales3_w_match75.0_wd0.02');
  expect(name('mixmatch', { optimizer: 'sgd', lr_decay: 'cosine' })).toBe(
    'MixMatch_archresnet_batch64_beta0.5_ema0.999_filters32_lr0.002_lr_decaycosine_nclass10_optimizersgd_repeat4_scales3_w_match100.0_wd0.02',
  );
  expect(name('mixmatch', { optimizer: 'sgd', momentum: 0.5 })).toMatch(/_momentum0\.5_nclass10_optimizersgd_/);
  // momentum means nothing to Adam, so it does not split Adam runs
  expect(name('mixmatch', { wd_mode: 'l2', momentum: 0.5 })).toBe('MixMatch_archresnet_batch64_beta0.5_ema0.999_filters32_lr0.002_nclass10_repeat4_scales3_w_match100.0_wd0.02_wd_model2');
  expect(() => resolveSettings(getAlgorithm('mixmatch'), {}, { optimizer: 'rmsprop' })).toThrow(/optimizer must be one of adam, sgd/);
  expect(() => resolveSettings(getAlgorithm('mixmatch'), {}, { momentum: 1 })).toThrow(/momentum must be in \[0, 1\)/);
});
