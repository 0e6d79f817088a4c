import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { getAlgorithm } from '../src/algorithms/registry';
import { selectBackend } from '../src/backend/select';
import { UserError } from '../src/errors';
import { resolveSettings, toTrainConfig } from '../src/train/config';
import { readClassMapping } from '../src/train/dataset';
import { readEventFile } from '../src/train/events';
import { accuracyPercent, meanCrossEntropy, perClassAccuracy, precisionRecallF1 } from '../src/train/metrics';
import { train } from '../src/train/trainer';
import { syntheticData } from './helpers/synthetic';

/**
 * The evaluation metrics RealMix logs (workflow-spec.md 3.6), against values worked out by hand
 * with scikit-learn's definitions, and their path into the event file and metrics.jsonl.
 */

test('precision, recall and F1 follow scikit-learn: classes from labels and predictions, 0 for undefined ratios', () => {
  // class 3 appears only among the predictions; class 2 has a true image never predicted right twice
  const truth = [0, 0, 1, 1, 2, 2, 2];
  const pred = [0, 1, 1, 1, 2, 0, 3];
  // per class (P, R, F, support): 0 (1/2, 1/2, 1/2, 2), 1 (2/3, 1, 4/5, 2), 2 (1, 1/3, 1/2, 3), 3 (0, 0, 0, 0)
  const m = precisionRecallF1(truth, pred);
  expect(m.precision.macro).toBeCloseTo((0.5 + 2 / 3 + 1 + 0) / 4, 12);
  expect(m.recall.macro).toBeCloseTo((0.5 + 1 + 1 / 3 + 0) / 4, 12);
  expect(m.f1.macro).toBeCloseTo((0.5 + 0.8 + 0.5 + 0) / 4, 12);
  expect(m.precision.weighted).toBeCloseTo((0.5 * 2 + (2 / 3) * 2 + 1 * 3) / 7, 12);
  expect(m.recall.weighted).toBeCloseTo(4 / 7, 12);
  expect(m.f1.weighted).toBeCloseTo((0.5 * 2 + 0.8 * 2 + 0.5 * 3) / 7, 12);
  // all right: everything 1
  const perfect = precisionRecallF1([1, 0, 1], [1, 0, 1]);
  expect([perfect.precision.macro, perfect.recall.weighted, perfect.f1.macro]).toEqual([1, 1, 1]);
});

test('per-class accuracy, accuracy and cross-entropy', () => {
  const acc = perClassAccuracy([0, 0, 1, 2, 2], [0, 1, 1, 2, 0], 4);
  expect(acc.slice(0, 3)).toEqual([50, 100, 50]);
  expect(acc[3]).toBeNaN();
  expect(accuracyPercent([1, 2, 3, 4], [1, 0, 3, 0])).toBe(50);
  expect(accuracyPercent([], [])).toBeNaN();
  // two rows of 3 logits
  const logits = [2, 0, -1, 0.5, 0.5, 0.5];
  const lse0 = Math.log(Math.exp(2) + 1 + Math.exp(-1));
  expect(meanCrossEntropy(logits, 3, [0, 2])).toBeCloseTo((lse0 - 2 + Math.log(3)) / 2, 12);
});

test('class mappings: RealMix JSON objects or arrays of names', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-map-'));
  try {
    const file = path.join(dir, 'm.json');
    fs.writeFileSync(file, '{"1": "dog", "0": "cat"}');
    expect(readClassMapping(file)).toEqual(['cat', 'dog']);
    fs.writeFileSync(file, '["a", "b", "c"]');
    expect(readClassMapping(file)).toEqual(['a', 'b', 'c']);
    fs.writeFileSync(file, '{"0": "cat", "2": "dog"}');
    expect(() => readClassMapping(file)).toThrow(/key "2" is not a label in 0\.\.1/);
    fs.writeFileSync(file, '{"0": 3}');
    expect(() => readClassMapping(file)).toThrow(UserError);
    expect(() => readClassMapping(path.join(dir, 'none.json'))).toThrow(/cannot read --class-mapping .*ENOENT/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

describe('every evaluation logs the RealMix metrics', () => {
  let dir: string;
  beforeAll(async () => {
    await selectBackend('wasm');
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-metrics-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  test('to the event file and metrics.jsonl, with per-class accuracy under the mapped names', async () => {
    const algo = getAlgorithm('supervised');
    const s = resolveSettings(algo, {}, { arch: 'te_cnn', batch: 16, train_kimg: 1, report_kimg: 1, save_kimg: 1, eval_batch: 5, lr: 0.01 });
    const cfg = toTrainConfig(algo, s, { trainDir: dir, seed: 3, augment: 'none', classNames: ['top band', 'bottom'] });
    const logs: string[] = [];
    const r = await train(cfg, syntheticData(), { log: (l) => logs.push(l) });
    expect(logs[0]).toMatch(/^Model FSBaseline_\S+: te_cnn, [\d,]+ trainable parameters$/);
    const lines = fs.readFileSync(path.join(r.runDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(lines).toHaveLength(1);
    const m = lines[0].metrics as Record<string, number>;
    const tags = ['losses/val_loss', 'precision/macro', 'recall/macro', 'f1_score/macro', 'precision/weighted', 'recall/weighted', 'f1_score/weighted'];
    for (const t of tags) expect([t, typeof m[t]]).toEqual([t, 'number']);
    for (let i = 1; i <= 10; i++) expect(m[`ood_examples/${i}`]).toBeGreaterThanOrEqual(0.5);
    expect(m['ood_examples/11']).toBeUndefined();
    // weighted recall is the accuracy; per-class accuracies average (8 test images per class) to it
    expect(100 * m['recall/weighted']).toBeCloseTo(lines[0].test, 4);
    expect((m['accuracy_test/top band'] + m['accuracy_test/bottom']) / 2).toBeCloseTo(lines[0].test, 4);
    expect(m['losses/val_loss']).toBeGreaterThan(0);

    const events = fs.readdirSync(path.join(r.runDir, 'tf')).filter((f) => f.startsWith('events.out.tfevents'));
    const logged = new Map<string, number>();
    for (const e of readEventFile(path.join(r.runDir, 'tf', events[0]))) for (const v of e.values) logged.set(v.tag, v.value);
    for (const t of [...tags, 'ood_examples/10', 'accuracy_test/top_band', 'accuracy_test/bottom', 'accuracy', 'accuracy/valid', 'accuracy/train_labeled', 'losses/xe']) {
      expect([t, logged.has(t)]).toEqual([t, true]);
    }
    expect(logged.get('f1_score/macro')).toBeCloseTo(m['f1_score/macro'], 6);
  });
});
