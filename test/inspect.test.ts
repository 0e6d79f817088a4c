import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Command } from 'commander';
import sharp from 'sharp';
import { register, runInspect } from '../src/commands/inspect';
import { createSplit } from '../src/data/create-split';
import { encodeImageExample } from '../src/data/example';
import { encodeExampleFeatures } from '../src/data/example-generic';
import { formatInspect, imageHeaderShape, inspectTarget } from '../src/data/inspect';
import { encodePngSync } from '../src/data/png';
import { writeRecords } from '../src/data/tfrecord';
import { UserError } from '../src/errors';

const png = (h: number, w: number, c: number, seed = 0): Uint8Array => encodePngSync(new Uint8Array(h * w * c).map((_, i) => (i * 3 + seed) & 0xff), h, w, c);

let root: string;
beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-inspect-'));
});
afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

describe('imageHeaderShape', () => {
  it('reads PNG and JPEG headers as TensorFlow would decode them', async () => {
    expect(imageHeaderShape(png(5, 7, 3))).toEqual({ encoding: 'png', height: 5, width: 7, channels: 3 });
    expect(imageHeaderShape(png(2, 3, 1))).toEqual({ encoding: 'png', height: 2, width: 3, channels: 1 });
    expect(imageHeaderShape(png(2, 3, 4))).toEqual({ encoding: 'png', height: 2, width: 3, channels: 4 });
    const jpeg = await sharp(Buffer.from(new Uint8Array(9 * 11 * 3).fill(90)), { raw: { width: 11, height: 9, channels: 3 } }).jpeg().toBuffer();
    expect(imageHeaderShape(jpeg)).toEqual({ encoding: 'jpeg', height: 9, width: 11, channels: 3 });
    expect(imageHeaderShape(Uint8Array.of(1, 2, 3))).toBeNull();
  });
});

describe('inspect', () => {
  it('counts records, shapes and classes of a file, with the first labels', async () => {
    const file = path.join(root, 'mixed.tfrecord');
    const labels = [3, 1, 3, 3, 0, 1, 3, 3, 3, 3, 1, 0];
    writeRecords(file, labels.map((l, i) => encodeImageExample(i === 5 ? png(8, 8, 1) : png(4, 4, 3, i), l)));
    const r = await inspectTarget(root, file);
    expect(r.kind).toBe('file');
    expect(r.parts).toHaveLength(1);
    expect(r.parts[0]).toMatchObject({
      role: 'file',
      records: 12,
      shapes: { '4x4x3': 11, '8x8x1': 1 },
      encodings: { png: 12 },
      labels: { 0: 2, 1: 3, 3: 7 },
      labelMin: 0,
      labelMax: 3,
      firstLabels: labels.slice(0, 10),
      otherRecords: 0,
    });
    const text = formatInspect(r);
    expect(text).toEqual([
      `file: ${file}`,
      '  records: 12',
      '  images: 4x4x3 (11), 8x8x1 (1); png (12)',
      '  labels: 3 distinct, range 0..3',
      '       0: 2   28.6%',
      '       1: 3   42.9%',
      '       3: 7  100.0%',
      '  first labels: 3 1 3 3 0 1 3 3 3 3',
    ]);
  });

  it('describes records that are not image/label Examples, and images it cannot read', async () => {
    const file = path.join(root, 'other.tfrecord');
    writeRecords(file, [
      encodeExampleFeatures({ x: { kind: 'float_list', values: [0.5] } }),
      encodeImageExample(Uint8Array.of(1, 2, 3), 4),
    ]);
    const [p] = (await inspectTarget(root, file)).parts;
    expect(p).toMatchObject({ records: 2, otherRecords: 1, firstOther: 'x: float_list[1] = 0.5', encodings: { undecodable: 1 }, labels: { 4: 1 } });
    expect(formatInspect({ target: file, kind: 'file', parts: [p] }).join('\n')).toMatch(/features: x float_list\[1\], image bytes_list\[1\], label int64_list\[1\]/);
  });

  it('covers every file of a base dataset, a split and a training name', async () => {
    const labels = Array.from({ length: 40 }, (_, i) => i % 4);
    writeRecords(path.join(root, 'toy-train.tfrecord'), labels.map((l, i) => encodeImageExample(png(4, 4, 3, i), l)));
    writeRecords(path.join(root, 'toy-test.tfrecord'), labels.slice(0, 8).map((l, i) => encodeImageExample(png(4, 4, 3, 100 + i), l)));
    expect((await inspectTarget(root, 'toy')).parts.map((p) => [p.role, p.records])).toEqual([['train', 40], ['test', 8]]);
    await createSplit({ root, dataset: 'toy', seed: 1, size: 8 });
    expect((await inspectTarget(root, 'toy.1@8')).parts.map((p) => [p.role, p.records])).toEqual([['labelled', 8], ['unlabelled', 32], ['test', 8]]);
    const t = await inspectTarget(root, 'toy.1@8-4');
    expect(t.parts.map((p) => [p.role, p.skip, p.records])).toEqual([['labelled', 0, 8], ['validation', 0, 4], ['unlabelled', 4, 28], ['test', 0, 8]]);
    // the validation head of a class-interleaved unlabel file holds one of each class
    expect(t.parts[1].labels).toEqual({ 0: 1, 1: 1, 2: 1, 3: 1 });
    expect(formatInspect(t)).toContain(`unlabelled: ${path.join(root, 'SSL', 'toy.1@8-unlabel.tfrecord')} [records 4..32)`);

    // an augmented-copies dataset with only its unlabelled file: labelled and test come from the base split, as in training
    writeRecords(path.join(root, 'SSL', 'toy_aug2.1@8-unlabel.tfrecord'), labels.slice(0, 6).map((l, i) => encodeImageExample(png(4, 4, 3, 200 + i), l)));
    const aug = await inspectTarget(root, 'toy_aug2.1@8');
    expect(aug.parts.map((p) => [p.role, path.relative(root, p.file), p.records])).toEqual([
      ['labelled', 'SSL/toy.1@8-label.tfrecord', 8],
      ['unlabelled', 'SSL/toy_aug2.1@8-unlabel.tfrecord', 6],
      ['test', 'toy-test.tfrecord', 8],
    ]);
  });

  it('names what is missing', async () => {
    await expect(inspectTarget(root, 'nothing')).rejects.toThrow(/no files of dataset nothing.*ssl create-datasets nothing/);
    await expect(inspectTarget(root, 'nothing.1@5')).rejects.toThrow(/nothing\.1@5-label\.tfrecord.*ssl create-split --dataset nothing --seed 1 --size 5/);
    await expect(inspectTarget(root, path.join(root, 'x.tfrecord'))).rejects.toThrow(UserError);
    await expect(inspectTarget(root, 'bad name!')).rejects.toThrow(/neither a file nor a dataset name/);
  });
});

describe('ssl inspect command', () => {
  it('documents its options and prints JSON', async () => {
    const p = new Command().exitOverride().configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
    register(p);
    const help = p.commands[0].helpInformation();
    expect(help).toMatch(/--json.*\(default: false\)/s);
    expect(help).toMatch(/--data-dir <dir>.*default: \$ML_DATA, else \.\/data/s);
    const file = path.join(root, 'one.tfrecord');
    writeRecords(file, [encodeImageExample(png(2, 2, 3), 5)]);
    const lines: string[] = [];
    await runInspect({ target: file, json: true }, (l) => lines.push(l));
    expect(JSON.parse(lines.join('\n'))).toMatchObject({ kind: 'file', parts: [{ records: 1, labels: { 5: 1 }, shapes: { '2x2x3': 1 } }] });
  });
});
