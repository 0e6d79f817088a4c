import * as path from 'path';
import { UserError } from '../errors';
import { type BuildContext, type DatasetBuilder, readingProgress, readMembers, readWhole, type ResolvedInput } from './dataset-inputs';
import { pacer, withDatasetOutput, type WrittenFile } from './dataset-output';
import { baseDatasetFile } from './paths';
import { columnMajorToHwc, forEachImage } from './pixel-layout';
import { FOLD_INDICES_FILE } from './create-split';

/**
 * STL-10 from http://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz (2.6 GB; no published
 * checksum, so the download is checked by its length): stl10_binary/{train,test,unlabeled}_X.bin
 * hold 96×96 RGB images as uint8, each image 3 planes stored column by column (numpy reads them as
 * N×3×96×96 and transposes (0, 3, 2, 1), as the originals do); {train,test}_y.bin hold one label
 * byte 1..10 per image, stored as 0..9. The 100,000 unlabelled images get label 0, as in the
 * originals. fold_indices.txt (the ten published 1,000-image training folds) is copied to
 * `<data root>/stl10_fold_indices.txt`, where create-split looks for it.
 *
 * The archive is read once, front to back: the unlabelled images (2.7 GB) are converted as they
 * stream past; the labelled ones (360 MB) are held until their label file has been read.
 */

export const STL10_SIDE = 96;
const PIXELS = STL10_SIDE * STL10_SIDE * 3;
const MEMBERS = ['train_X.bin', 'train_y.bin', 'test_X.bin', 'test_y.bin', 'unlabeled_X.bin', 'fold_indices.txt'];

export const STL10_ARCHIVE = { file: 'stl10_binary.tar.gz', url: 'http://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz' };

function checkFolds(text: string, where: string): void {
  const bad = text.split('\n').findIndex((line) => !/^[\d\s]*$/.test(line));
  if (bad >= 0) throw new UserError(`${where}: line ${bad + 1} is not a list of image indices; is it STL-10's fold_indices.txt?`);
}

async function buildStl10(ctx: BuildContext, input: ResolvedInput): Promise<WrittenFile[]> {
  const reading = readingProgress(ctx, 'stl10');
  const onBytes = reading.onBytes;
  const px = new Uint8Array(PIXELS);
  const pace = pacer();
  try {
    return await withDatasetOutput(ctx.root, 'stl10', async (out) => {
      // opened now so that the files are listed in this order, whatever the archive's order
      for (const s of ['train', 'test', 'unlabeled']) out.writer(`stl10-${s}`);
      const held = new Map<string, { data: Buffer; where: string }>();
      const written = new Set<string>();
      const writeLabelled = async (subset: 'train' | 'test'): Promise<void> => {
        const x = held.get(`${subset}_X.bin`);
        const y = held.get(`${subset}_y.bin`);
        if (!x || !y || written.has(subset)) return;
        written.add(subset);
        if (x.data.length % PIXELS !== 0) throw new UserError(`${x.where}: ${x.data.length} bytes is not a whole number of 96x96x3 images`);
        const n = x.data.length / PIXELS;
        if (y.data.length !== n) throw new UserError(`${y.where}: holds ${y.data.length} labels for the ${n} images of ${subset}_X.bin`);
        for (let i = 0; i < n; i++) {
          const label = y.data[i];
          if (label < 1 || label > 10) throw new UserError(`${y.where}: label ${i} is ${label}, but STL-10 labels are 1..10; is it the right file?`);
          out.writeImage(`stl10-${subset}`, columnMajorToHwc(x.data, i * PIXELS, STL10_SIDE, STL10_SIDE, 3, px), STL10_SIDE, STL10_SIDE, 3, label - 1);
          await pace();
        }
        held.delete(`${subset}_X.bin`);
      };
      for await (const m of readMembers(input, MEMBERS, onBytes)) {
        if (m.name === 'unlabeled_X.bin') {
          if (m.size % PIXELS !== 0) throw new UserError(`${m.where}: ${m.size} bytes is not a whole number of 96x96x3 images`);
          await forEachImage(m.body(), PIXELS, async (src, off) => {
            out.writeImage('stl10-unlabeled', columnMajorToHwc(src, off, STL10_SIDE, STL10_SIDE, 3, px), STL10_SIDE, STL10_SIDE, 3, 0);
            await pace();
          });
          continue;
        }
        held.set(m.name, { data: await readWhole(m), where: m.where });
        await writeLabelled('train');
        await writeLabelled('test');
      }
      const folds = held.get('fold_indices.txt') as { data: Buffer; where: string };
      checkFolds(folds.data.toString('latin1'), folds.where);
      out.addFile(path.join(ctx.root, FOLD_INDICES_FILE), folds.data);
      reading.complete();
    });
  } finally {
    reading.stop();
  }
}

export const stl10Builder: DatasetBuilder = {
  name: 'stl10',
  formats: [{ format: 'binary', members: MEMBERS, archive: STL10_ARCHIVE }],
  outputs: (root) => [...(['train', 'test', 'unlabeled'] as const).map((s) => baseDatasetFile(root, 'stl10', s)), path.join(root, FOLD_INDICES_FILE)],
  build: (ctx, input) => buildStl10(ctx, input as ResolvedInput),
};
