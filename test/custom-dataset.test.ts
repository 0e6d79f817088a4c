import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import sharp from 'sharp';
import { createDatasets, parseCreateDatasetsOptions, type RawCreateDatasetsOptions } from '../src/commands/create-datasets';
import { classMappingJson } from '../src/data/custom-dataset';
import { UserError } from '../src/errors';
import { decodeRecords, silentProgress } from './helpers/datasets';

let work: string;
let root: string;
beforeEach(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-custom-'));
  root = path.join(work, 'data');
});
afterEach(() => fs.rmSync(work, { recursive: true, force: true }));

/** Pixels that differ per image and per position, so a mix-up shows. */
function pattern(h: number, w: number, c: number, seed: number): Buffer {
  return Buffer.from(Array.from({ length: h * w * c }, (_, i) => (i * 37 + seed * 101) % 256));
}

async function image(rel: string, o: { h?: number; w?: number; c?: 1 | 3; seed: number }): Promise<string> {
  const file = path.join(work, rel);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const h = o.h ?? 8;
  const w = o.w ?? 8;
  const c = o.c ?? 3;
  let img = sharp(pattern(h, w, c, o.seed), { raw: { width: w, height: h, channels: c } });
  if (c === 1) img = img.toColourspace('b-w');
  await (/\.jpe?g$/i.test(rel) ? img.jpeg({ quality: 95 }) : img.png()).toFile(file);
  return file;
}

/** What sharp decodes a file to, as H×W×3 or H×W×1. */
async function pixels(file: string, c: 1 | 3 = 3, size?: number): Promise<Buffer> {
  let img = sharp(file).removeAlpha();
  if (size) img = img.resize(size, size, { fit: 'fill' });
  img = c === 1 ? img.toColourspace('b-w') : img.toColourspace('srgb');
  return img.raw().toBuffer();
}

async function run(names: string[], o: RawCreateDatasetsOptions): Promise<string[]> {
  const logs: string[] = [];
  await createDatasets(parseCreateDatasetsOptions(names, { dataDir: root, ...o }), (l) => logs.push(l), { progress: silentProgress() });
  return logs;
}

const dirs = (): RawCreateDatasetsOptions => ({ name: 'pets', trainDir: path.join(work, 'train'), testDir: path.join(work, 'test') });

async function standardFolders(): Promise<void> {
  await image('train/cat/a.png', { seed: 1 });
  await image('train/cat/b.png', { seed: 2 });
  await image('train/cat/c.png', { seed: 3 });
  await image('train/dog/a.jpg', { seed: 4 });
  await image('train/dog/b.JPEG', { seed: 5 });
  await image('train/0007_fish.png', { seed: 6 }); // RealMix rename convention
  await image('test/cat/x.png', { seed: 7 });
  await image('test/dog/y.jpg', { seed: 8 });
  await image('test/0001_fish.png', { seed: 9 });
  await image('unlabeled/u1.png', { seed: 10 });
  await image('unlabeled/more/u2.jpg', { seed: 11 });
  // what copying from a Mac or a notebook leaves behind: not images of the set
  fs.writeFileSync(path.join(work, 'train/cat/._a.png'), 'AppleDouble');
  fs.mkdirSync(path.join(work, 'train/.ipynb_checkpoints'));
}

describe('custom datasets', () => {
  it('writes train, test, unlabel and the class mapping into the data root', async () => {
    await standardFolders();
    const cwd = process.cwd();
    const logs = await run(['custom'], { ...dirs(), unlabeledDir: path.join(work, 'unlabeled') });
    expect(process.cwd()).toBe(cwd);
    expect(fs.readdirSync(root).sort()).toEqual(['pets-test.tfrecord', 'pets-train.tfrecord', 'pets-unlabel.tfrecord', 'pets_class_mappings.json']);
    expect(fs.readFileSync(path.join(root, 'pets_class_mappings.json'), 'utf8')).toBe('{"0": "cat", "1": "dog", "2": "fish"}');
    expect(logs).toEqual([
      'pets: 3 classes (cat, dog, fish), 8x8x3 images: 6 train, 3 test, 2 unlabelled (label 0)',
      `Splits with the unlabelled images: ssl create-split --dataset pets --seed <seed> --size <labelled> --label-size 6 ${path.join(root, 'pets-train.tfrecord')} ${path.join(root, 'pets-unlabel.tfrecord')}`,
      `Wrote ${path.join(root, 'pets-train.tfrecord')} (6 records)`,
      `Wrote ${path.join(root, 'pets-test.tfrecord')} (3 records)`,
      `Wrote ${path.join(root, 'pets-unlabel.tfrecord')} (2 records)`,
      `Wrote ${path.join(root, 'pets_class_mappings.json')}`,
    ]);

    // classes interleaved round-robin, files sorted within a class
    const train = await decodeRecords(path.join(root, 'pets-train.tfrecord'));
    expect(train.labels).toEqual([0, 1, 2, 0, 1, 0]);
    const order = ['train/cat/a.png', 'train/dog/a.jpg', 'train/0007_fish.png', 'train/cat/b.png', 'train/dog/b.JPEG', 'train/cat/c.png'];
    const expected = await Promise.all(order.map((f) => pixels(path.join(work, f))));
    expect(Buffer.from(train.pixels).equals(Buffer.concat(expected))).toBe(true);
    // PNG sources come through exactly
    expect(Buffer.from(train.pixels.subarray(0, 192)).equals(pattern(8, 8, 3, 1))).toBe(true);

    const test = await decodeRecords(path.join(root, 'pets-test.tfrecord'));
    expect(test.labels).toEqual([0, 1, 2]);
    const unl = await decodeRecords(path.join(root, 'pets-unlabel.tfrecord'));
    expect(unl.labels).toEqual([0, 0]);
    expect(Buffer.from(unl.pixels).equals(Buffer.concat([await pixels(path.join(work, 'unlabeled/more/u2.jpg')), pattern(8, 8, 3, 10)]))).toBe(true);

    expect(await run(['custom'], { ...dirs(), unlabeledDir: path.join(work, 'unlabeled') })).toEqual(['Skipping already installed: pets']);
  });

  it('resizes to --img-size (stretch to fill, as infer does), and refuses mixed sizes without it', async () => {
    await image('train/a/1.png', { seed: 1, h: 10, w: 6 });
    await image('train/b/2.png', { seed: 2 });
    await image('test/a/3.png', { seed: 3, h: 5, w: 5 });
    await expect(run(['custom'], dirs())).rejects.toThrow(
      new UserError(`images differ in size (${path.join(work, 'train/b/2.png')} is 8x8, ${path.join(work, 'train/a/1.png')} is 6x10); pass --img-size N to resize them all to N x N`),
    );
    expect(fs.readdirSync(root)).toEqual([]);
    await run(['custom'], { ...dirs(), imgSize: 6 });
    const train = await decodeRecords(path.join(root, 'pets-train.tfrecord'));
    expect(train.shapes).toEqual(['6x6x3']);
    expect(Buffer.from(train.pixels.subarray(0, 108)).equals(await pixels(path.join(work, 'train/a/1.png'), 3, 6))).toBe(true);
  });

  it('keeps grayscale images as one channel when every image is grayscale', async () => {
    await image('train/a/1.png', { seed: 1, c: 1 });
    await image('train/b/2.png', { seed: 2, c: 1 });
    await image('test/a/3.png', { seed: 3, c: 1 });
    await run(['custom'], dirs());
    const train = await decodeRecords(path.join(root, 'pets-train.tfrecord'));
    expect(train.shapes).toEqual(['8x8x1']);
    expect(Buffer.from(train.pixels.subarray(0, 64)).equals(pattern(8, 8, 1, 1))).toBe(true);
  });

  it('writes the mapping as Python json.dumps does', () => {
    expect(classMappingJson(['a b', 'é', 'q"t'])).toBe('{"0": "a b", "1": "é", "2": "q\\"t"}');
  });
});

describe('bad custom input: one line naming the file and the problem, nothing written', () => {
  async function fails(o: RawCreateDatasetsOptions, message: string): Promise<void> {
    await expect(run(['custom'], o)).rejects.toThrow(new UserError(message));
    expect(fs.existsSync(root) ? fs.readdirSync(root) : []).toEqual([]);
  }

  it('an image that cannot be decoded, found before or while writing', async () => {
    await standardFolders();
    fs.writeFileSync(path.join(work, 'test/cat/broken.png'), 'not a png at all');
    await expect(run(['custom'], dirs())).rejects.toThrow(new RegExp(`^cannot read image ${path.join(work, 'test/cat/broken.png')}: `));
    expect(fs.existsSync(root) ? fs.readdirSync(root) : []).toEqual([]);

    // a JPEG whose header is fine but whose data is cut off: found when it is decoded for writing
    fs.rmSync(path.join(work, 'test/cat/broken.png'));
    const big = await image('test/dog/big.jpg', { seed: 1, h: 64, w: 64 });
    const whole = fs.readFileSync(big);
    fs.writeFileSync(big, whole.subarray(0, Math.floor(whole.length * 0.7)));
    expect((await sharp(big).metadata()).width).toBe(64);
    await expect(run(['custom'], { ...dirs(), imgSize: 8 })).rejects.toThrow(
      // libvips's own words, when they come with the error
      new RegExp(`^cannot read image ${big}: (VipsJpeg: premature end of JPEG|the image data is damaged or cut off)`),
    );
    expect(fs.readdirSync(root)).toEqual([]);
  });

  it('an empty class folder, a test class missing from train, an image without a class, one class', async () => {
    await standardFolders();
    fs.mkdirSync(path.join(work, 'train/bird'));
    await fails(dirs(), `--train-dir: class folder ${path.join(work, 'train/bird')} holds no images; add some or remove it`);
    fs.rmdirSync(path.join(work, 'train/bird'));

    await image('test/bird/z.png', { seed: 1 });
    await fails(dirs(), `--test-dir: ${path.join(work, 'test/bird/z.png')} is of class 'bird', which --train-dir does not have (it has: cat, dog, fish)`);
    fs.rmSync(path.join(work, 'test/bird'), { recursive: true });

    await image('train/photo.png', { seed: 1 });
    await fails(dirs(), `--train-dir: cannot tell the class of ${path.join(work, 'train/photo.png')}: put it in a sub-folder named after its class, or name it <n>_<class>.<ext>`);

    await image('solo/cat/a.png', { seed: 1 });
    await fails({ ...dirs(), trainDir: path.join(work, 'solo') }, `--train-dir ${path.join(work, 'solo')} holds only the class 'cat'; a classifier needs at least two`);
  });

  it('options: missing, misspelt or misplaced', () => {
    const base = dirs();
    expect(() => parseCreateDatasetsOptions(['custom'], { ...base, name: undefined })).toThrow(
      new UserError('custom needs --name: ssl create-datasets custom --name <name> --train-dir <dir> --test-dir <dir> [--unlabeled-dir <dir>]'),
    );
    expect(() => parseCreateDatasetsOptions(['custom'], { ...base, testDir: undefined })).toThrow('custom needs --test-dir');
    expect(() => parseCreateDatasetsOptions(['custom'], { ...base, name: 'my-data' })).toThrow("--name 'my-data' may hold only letters, digits and _");
    expect(() => parseCreateDatasetsOptions(['custom'], { ...base, name: 'cifar10' })).toThrow("--name 'cifar10' is a built-in dataset; choose another name");
    expect(() => parseCreateDatasetsOptions(['custom'], base)).toThrow(`--train-dir ${path.join(work, 'train')} is not a folder`);
    expect(() => parseCreateDatasetsOptions(['mnist'], { trainDir: 'x' })).toThrow(
      new UserError('--train-dir is for the custom dataset only: ssl create-datasets custom --name <name> --train-dir <dir> --test-dir <dir>'),
    );
  });
});
