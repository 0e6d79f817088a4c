import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as ts from 'typescript';
import { createSplit } from '../src/data/create-split';
import { decodeLabel, encodeImageExample } from '../src/data/example';
import { filterDataset, OTHER_LABEL } from '../src/data/filter';
import { MISMATCH_PERCENTS, mismatchPercent, mismatchSetting } from '../src/data/mismatch';
import { encodePngSync } from '../src/data/png';
import { readAllRecords, writeRecords } from '../src/data/tfrecord';
import { loadTrainingData } from '../src/train/dataset';

/**
 * The class-mismatch recipe (scripts/mismatch-recipe.sh) on a tiny CIFAR-10 stand-in: 10 classes
 * of 4x4 images. First its core (the settings and `filter --mismatch --remap`) through the library,
 * then the script itself, run by bash against the ssl commands it uses.
 */

const REPO = path.join(__dirname, '..');
const PER_CLASS = 12;

function toyRecords(perClass: number, offset: number): Uint8Array[] {
  return Array.from({ length: perClass * 10 }, (_, i) => {
    const px = new Uint8Array(48).map((_, j) => (offset + i * 31 + j * 7) & 0xff);
    return encodeImageExample(encodePngSync(px, 4, 4, 3), i % 10);
  });
}

function makeToy(root: string): void {
  writeRecords(path.join(root, 'toy-train.tfrecord'), toyRecords(PER_CLASS, 0));
  writeRecords(path.join(root, 'toy-test.tfrecord'), toyRecords(2, 1000));
}

let root: string;
beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-mismatch-'));
});
afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

describe('the mismatch settings', () => {
  it("are the README's table, and each mismatches its percentage of unlabelled classes", () => {
    expect(MISMATCH_PERCENTS).toEqual([0, 25, 50, 75, 100]);
    expect(MISMATCH_PERCENTS.map((p) => mismatchSetting(p).unlabelClasses.join(','))).toEqual(['4,5,6,7', '0,5,6,7', '0,1,6,7', '0,1,8,7', '0,1,8,9']);
    for (const p of MISMATCH_PERCENTS) {
      expect(mismatchSetting(p).classes).toEqual([2, 3, 4, 5, 6, 7]);
      expect(mismatchPercent(mismatchSetting(p))).toBe(p);
    }
    expect(() => mismatchSetting(10)).toThrow(/one of 0, 25, 50, 75, 100/);
  });

  it('filter --mismatch --remap gives five trainable datasets with the stated share of foreign classes', async () => {
    makeToy(root);
    await createSplit({ root, dataset: 'toy', seed: 1, size: 30 });
    for (const p of MISMATCH_PERCENTS) {
      const r = filterDataset({ root, input: 'toy.1@30', output: `toy6_mismatch${p}`, ...mismatchSetting(p), remap: true });
      expect(r.name).toBe(`toy6_mismatch${p}.1@30`);
      const data = await loadTrainingData(root, `${r.name}-0`, { unlabeled: true });
      expect(data.nclass).toBe(6);
      expect(new Set(data.labeled.labels)).toEqual(new Set([0, 1, 2, 3, 4, 5]));
      expect(new Set(data.test.labels)).toEqual(new Set([0, 1, 2, 3, 4, 5]));
      // 4 classes of 9 unlabelled records each; p% of them foreign
      const u = Array.from(data.unlabeled!.labels);
      expect(u).toHaveLength(36);
      expect(u.filter((l) => l === OTHER_LABEL)).toHaveLength((36 * p) / 100);
      expect(u.filter((l) => l !== OTHER_LABEL).every((l) => l >= 2 && l <= 5)).toBe(true);
      if (p < 100) {
        // a validation set from the head holds animal classes only
        const withValid = await loadTrainingData(root, `${r.name}-5`, { unlabeled: true });
        expect(Array.from(withValid.valid.labels).every((l) => l >= 0 && l < 6)).toBe(true);
      }
    }
  });
});

/**
 * `ssl` for the script: a commander program with the commands it calls (the built CLI registers
 * them only once src/commands/index.ts lists them). Their sources, and whatever they import, are
 * transpiled here once with typescript, so that each of the script's ssl calls is a plain node start.
 */
function writeShim(dir: string): string {
  const out = path.join(dir, 'compiled');
  const todo = [path.join(REPO, 'src', 'commands', 'create-split.ts'), path.join(REPO, 'src', 'commands', 'filter.ts')];
  const seen = new Set<string>();
  while (todo.length > 0) {
    const file = todo.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    const text = fs.readFileSync(file, 'utf8');
    for (const imp of ts.preProcessFile(text, true, true).importedFiles) {
      if (imp.fileName.startsWith('.')) todo.push(path.resolve(path.dirname(file), `${imp.fileName}.ts`));
    }
    const js = ts.transpileModule(text, {
      compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
      fileName: file,
    }).outputText;
    const target = path.join(out, path.relative(REPO, file)).replace(/\.ts$/, '.js');
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.writeFileSync(target, js);
  }
  // the compiled tree finds node_modules (sharp, protobufjs, ...) through a link at its root
  fs.symlinkSync(path.join(REPO, 'node_modules'), path.join(out, 'node_modules'), 'dir');
  const shim = path.join(out, 'ssl-shim.js');
  fs.writeFileSync(
    shim,
    `
const { Command, CommanderError } = require('commander');
const program = new Command().name('ssl').exitOverride();
for (const c of ['create-split', 'filter']) require('./src/commands/' + c + '.js').register(program);
program.parseAsync(process.argv).catch((e) => {
  if (!(e instanceof CommanderError)) console.error('ssl: ' + e.message);
  process.exitCode = e instanceof CommanderError ? e.exitCode : 1;
});
`,
  );
  return shim;
}

describe('scripts/mismatch-recipe.sh', () => {
  it('is valid bash', () => {
    const r = spawnSync('bash', ['-n', path.join(REPO, 'scripts', 'mismatch-recipe.sh')], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('makes the split and the five settings, prints how to train them, and reruns without --force', () => {
    const data = path.join(root, 'data');
    fs.mkdirSync(data);
    makeToy(data);
    const env = { ...process.env, ML_DATA: data, SSL: `${process.execPath} ${writeShim(root)}`, DATASET: 'toy', OUTPUT: 'toy6', VALID: '2' };
    const run = () => spawnSync('bash', [path.join(REPO, 'scripts', 'mismatch-recipe.sh'), '3', '20'], { encoding: 'utf8', env, cwd: root, timeout: 300_000 });
    const r = run();
    expect(r.stderr.split('\n').filter((l) => l.startsWith('ssl:'))).toEqual([]);
    expect(r.status).toBe(0);
    expect(fs.existsSync(path.join(data, 'SSL', 'toy.3@20-map.json'))).toBe(true);
    for (const p of MISMATCH_PERCENTS) {
      const labels = readAllRecords(path.join(data, 'SSL', `toy6_mismatch${p}.3@20-unlabel.tfrecord`)).map((x) => decodeLabel(x));
      expect(labels.filter((l) => l === OTHER_LABEL).length / labels.length).toBeCloseTo(p / 100, 1);
      expect(fs.existsSync(path.join(data, `toy6_mismatch${p}-test.tfrecord`))).toBe(true);
      expect(fs.existsSync(path.join(data, `toy6_mismatch${p}-remap.json`))).toBe(true);
    }
    expect(r.stdout).toContain('Train each setting, e.g.:');
    expect(r.stdout).toContain('  ssl train --algo mixmatch --dataset toy6_mismatch25.3@20-2');
    expect(r.stdout).toContain('  ssl train --algo mixmatch --dataset toy6_mismatch100.3@20-0');

    // a second run finds the split, and stops at the first existing output with the ssl error line
    const again = run();
    expect(again.status).toBe(1);
    expect(again.stderr).toMatch(/^ssl: .*toy6_mismatch0\.3@20-label\.tfrecord.*already exist.*--force/m);
    const forced = spawnSync('bash', [path.join(REPO, 'scripts', 'mismatch-recipe.sh'), '3', '20'], { encoding: 'utf8', env: { ...env, FORCE: '1' }, cwd: root, timeout: 300_000 });
    expect(forced.status).toBe(0);
  });
});
