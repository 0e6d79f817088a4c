import * as fs from 'fs';
import * as path from 'path';
import sharp from 'sharp';
import { UserError } from '../errors';
import type { DatasetBuilder } from './dataset-inputs';
import { pacer, withDatasetOutput } from './dataset-output';
import { emptyLeafFolders, type FolderImage, imageErrorReason, listImages, loadImageAs } from './image-folder';
import { interleaveByClass } from './mnist';
import { baseDatasetFile } from './paths';

/**
 * A dataset from the user's own image folders (RealMix's `custom`), written as
 * `<name>-train.tfrecord`, `<name>-test.tfrecord`, `<name>-unlabel.tfrecord` (when unlabelled
 * images are given, all with label 0) and `<name>_class_mappings.json` (`{"0": "cat", …}`), all in
 * the data root.
 *
 * - Images: PNG and JPEG files (.png, .jpg, .jpeg, any case), anywhere below each folder.
 * - Class of a train or test image: the name of the folder it is in (`train/cat/x.png`), or, for
 *   an image directly in the folder, the `<class>` of a `<n>_<class>.<ext>` name (what RealMix's
 *   rename script writes). Class indices follow the sorted class names of the train folder.
 * - Size: kept when every image has the same size; with --img-size N every image becomes N×N,
 *   resized by sharp (Lanczos 3) and stretched to fill (aspect ratio not kept), the same resize
 *   `ssl infer` applies. Images of different sizes without --img-size are an error.
 * - Channels: grayscale when every image is grayscale, else RGB (alpha dropped).
 * - Order: train and test interleave the classes (every prefix is class-balanced, as the
 *   validation set is a prefix); within a class, and in the unlabelled file, sorted file names.
 */

export interface CustomDatasetOptions {
  name: string;
  trainDir: string;
  testDir: string;
  unlabeledDir?: string;
  imgSize?: number;
}

export const CUSTOM_NAME = /^[A-Za-z0-9_]+$/;

export function classMappingFile(root: string, name: string): string {
  return path.join(root, `${name}_class_mappings.json`);
}

/** Python's json.dumps of the {index: class} dict, as RealMix writes it. */
export function classMappingJson(classes: string[]): string {
  return `{${classes.map((c, i) => `${JSON.stringify(String(i))}: ${JSON.stringify(c)}`).join(', ')}}`;
}

interface Item {
  file: string;
  label: number;
}

function listLabelled(dir: string, flag: string): FolderImage[] {
  const images = listImages(dir, flag);
  const empty = emptyLeafFolders(dir);
  if (empty.length > 0) throw new UserError(`${flag}: class folder ${path.join(dir, empty[0])} holds no images; add some or remove it`);
  const unknown = images.find((i) => i.className === null);
  if (unknown) {
    throw new UserError(
      `${flag}: cannot tell the class of ${path.join(dir, unknown.file)}: put it in a sub-folder named after its class, or name it <n>_<class>.<ext>`,
    );
  }
  return images;
}

/** Items of each class in file order, interleaved round-robin over classes. */
function interleaved(dir: string, images: FolderImage[], classes: string[]): Item[] {
  const perClass: number[][] = classes.map(() => []);
  images.forEach((img, i) => perClass[classes.indexOf(img.className as string)].push(i));
  return interleaveByClass(perClass).map(([c, i]) => ({ file: path.join(dir, images[i].file), label: c }));
}

interface Shape {
  height: number;
  width: number;
  channels: number;
}

async function probe(file: string): Promise<{ width: number; height: number; grey: boolean }> {
  try {
    const m = await sharp(file).metadata();
    if (!m.width || !m.height) throw new Error('no image size');
    return { width: m.width, height: m.height, grey: (m.channels ?? 3) <= 2 };
  } catch (e) {
    throw new UserError(`cannot read image ${file}: ${imageErrorReason(e)}`);
  }
}

/** The one size every image gets; see the file comment. */
async function chooseShape(files: string[], imgSize: number | undefined, onProbe: () => void): Promise<Shape> {
  let grey = true;
  let first: { file: string; width: number; height: number } | null = null;
  let differs: string | null = null;
  for (let i = 0; i < files.length; i += 16) {
    const metas = await Promise.all(files.slice(i, i + 16).map(probe));
    metas.forEach((m, k) => {
      grey &&= m.grey;
      const file = files[i + k];
      if (!first) first = { file, width: m.width, height: m.height };
      else if (!differs && (m.width !== first.width || m.height !== first.height)) {
        differs = `${file} is ${m.width}x${m.height}, ${first.file} is ${first.width}x${first.height}`;
      }
      onProbe();
    });
  }
  const channels = grey ? 1 : 3;
  if (imgSize !== undefined) return { height: imgSize, width: imgSize, channels };
  if (differs) throw new UserError(`images differ in size (${differs}); pass --img-size N to resize them all to N x N`);
  const f = first as unknown as { width: number; height: number };
  return { height: f.height, width: f.width, channels };
}

export function customBuilder(o: CustomDatasetOptions): DatasetBuilder {
  const stems = { train: `${o.name}-train`, test: `${o.name}-test`, unlabel: `${o.name}-unlabel` };
  return {
    name: o.name,
    formats: [],
    outputs: (root) => [
      baseDatasetFile(root, o.name, 'train'),
      baseDatasetFile(root, o.name, 'test'),
      ...(o.unlabeledDir ? [baseDatasetFile(root, o.name, 'unlabel')] : []),
      classMappingFile(root, o.name),
    ],
    async build(ctx) {
      const trainImages = listLabelled(o.trainDir, '--train-dir');
      const classes = [...new Set(trainImages.map((i) => i.className as string))].sort();
      if (classes.length < 2) throw new UserError(`--train-dir ${o.trainDir} holds only the class '${classes[0]}'; a classifier needs at least two`);
      const testImages = listLabelled(o.testDir, '--test-dir');
      const stray = testImages.find((i) => !classes.includes(i.className as string));
      if (stray) {
        throw new UserError(
          `--test-dir: ${path.join(o.testDir, stray.file)} is of class '${stray.className}', which --train-dir does not have (it has: ${classes.join(', ')})`,
        );
      }
      const unlabeled = o.unlabeledDir ? listImages(o.unlabeledDir, '--unlabeled-dir') : [];
      const subsets: Array<[string, Item[]]> = [
        [stems.train, interleaved(o.trainDir, trainImages, classes)],
        [stems.test, interleaved(o.testDir, testImages, classes)],
      ];
      if (o.unlabeledDir) subsets.push([stems.unlabel, unlabeled.map((i) => ({ file: path.join(o.unlabeledDir as string, i.file), label: 0 }))]);
      const all = subsets.flatMap(([, items]) => items.map((i) => i.file));

      const checkBar = ctx.progress(`${o.name}: checking images`, all.length);
      let checked = 0;
      let shape: Shape;
      try {
        shape = await chooseShape(all, o.imgSize, () => checkBar.update(++checked));
      } finally {
        checkBar.stop();
      }
      const { height, width, channels } = shape;
      const bar = ctx.progress(`${o.name} images`, all.length);
      let done = 0;
      const pace = pacer(64);
      try {
        const files = await withDatasetOutput(ctx.root, o.name, async (out) => {
          for (const [stem, items] of subsets) {
            out.writer(stem);
            // decode a few at a time (sharp works off the main thread), write in order
            for (let i = 0; i < items.length; i += 8) {
              const batch = items.slice(i, i + 8);
              const pixels = await Promise.all(batch.map((it) => loadImageAs(it.file, height, width, channels)));
              batch.forEach((it, k) => out.writeImage(stem, pixels[k], height, width, channels, it.label));
              done += batch.length;
              bar.update(done);
              await pace();
            }
          }
          out.addFile(classMappingFile(ctx.root, o.name), classMappingJson(classes));
        });
        ctx.log(
          `${o.name}: ${classes.length} classes (${classes.join(', ')}), ${height}x${width}x${channels} images: ` +
            `${subsets[0][1].length} train, ${subsets[1][1].length} test` +
            (o.unlabeledDir ? `, ${unlabeled.length} unlabelled (label 0)` : ''),
        );
        if (o.unlabeledDir) {
          // create-split reads its inputs as one sequence; --label-size keeps the labels to the train part
          ctx.log(
            `Splits with the unlabelled images: ssl create-split --dataset ${o.name} --seed <seed> --size <labelled> ` +
              `--label-size ${subsets[0][1].length} ${baseDatasetFile(ctx.root, o.name, 'train')} ${baseDatasetFile(ctx.root, o.name, 'unlabel')}`,
          );
        }
        return files;
      } finally {
        bar.stop();
      }
    },
  };
}

/** Checks the custom options before anything is read; folders must exist. */
export function validateCustomOptions(o: CustomDatasetOptions, reserved: string[]): void {
  if (!CUSTOM_NAME.test(o.name)) throw new UserError(`--name '${o.name}' may hold only letters, digits and _ (it becomes <name>-train.tfrecord and <name>.<seed>@<size>)`);
  if (reserved.includes(o.name)) throw new UserError(`--name '${o.name}' is a built-in dataset; choose another name`);
  for (const [flag, dir] of [['--train-dir', o.trainDir], ['--test-dir', o.testDir], ['--unlabeled-dir', o.unlabeledDir]] as const) {
    if (dir !== undefined && !(fs.existsSync(dir) && fs.statSync(dir).isDirectory())) throw new UserError(`${flag} ${dir} is not a folder`);
  }
}
