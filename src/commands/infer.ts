import { Command } from 'commander';
import { BACKEND_HELP, selectBackend } from '../backend/select';
import { readClassMapping } from '../train/dataset';
import { inferFolder } from '../train/infer';
import { intArg } from './parse';

export function register(program: Command): void {
  program
    .command('infer')
    .summary('classify a folder of images')
    .description('classify every PNG/JPEG in a folder with a trained checkpoint; writes <dataset>_pred.npy')
    .requiredOption('--ckpt <path>', 'run directory (its newest checkpoint) or a model.ckpt-*.sslckpt file')
    .requiredOption('--dir <folder>', 'folder of images; the class comes from a sub-folder name or a <n>_<class>.<ext> file name when present')
    .option('--out <file>', 'predictions file: 1-D int64 .npy of classes in sorted file order (default: ./<dataset>_pred.npy)')
    .option('--probs', 'also write the class probabilities as <name>_probs.npy (float32, N x classes)', false)
    .option('--class-mapping <json>', 'class names ({"0": "cat", ...}) for reading classes from file names (default: the mapping the run was trained with, if any)')
    .option('--batch <n>', 'images per forward pass', intArg(1), 256)
    .option('--backend <name>', BACKEND_HELP)
    .action(async (o: { ckpt: string; dir: string; out?: string; probs: boolean; batch: number; backend?: string; classMapping?: string }) => {
      const classNames = o.classMapping ? readClassMapping(o.classMapping) : undefined;
      await selectBackend(o.backend ?? process.env.SSL_BACKEND);
      const r = await inferFolder({ ckpt: o.ckpt, dir: o.dir, out: o.out, probs: o.probs, batch: o.batch, classNames });
      console.log(`Classified ${r.files.length} images with ${r.checkpoint}`);
      if (r.accuracy !== null) console.log(`Overall Acc: ${r.accuracy.toFixed(2)}% (${r.labelled} images with a known class)`);
      console.log(`Saved: ${r.predPath}`);
      if (r.probsPath) console.log(`Saved: ${r.probsPath}`);
    });
}
