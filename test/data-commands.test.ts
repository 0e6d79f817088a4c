import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Command } from 'commander';
import { register as registerCreateDatasets, parseCreateDatasetsOptions } from '../src/commands/create-datasets';
import { register as registerExtractAccuracy } from '../src/commands/extract-accuracy';
import { UserError } from '../src/errors';
import { EventWriter } from '../src/train/events';

let tmp: string;
let logs: string[];
let logSpy: jest.SpyInstance;
beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-cmd-'));
  logs = [];
  logSpy = jest.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void logs.push(a.join(' ')));
});
afterEach(() => {
  logSpy.mockRestore();
  fs.rmSync(tmp, { recursive: true, force: true });
});

function program(): { cmd: Command; help: () => string } {
  let out = '';
  const cmd = new Command().name('ssl').exitOverride().configureOutput({ writeOut: (s) => (out += s), writeErr: (s) => (out += s) });
  registerCreateDatasets(cmd);
  registerExtractAccuracy(cmd);
  return { cmd, help: () => out };
}

const run = (...args: string[]): Promise<Command> => program().cmd.parseAsync(['node', 'ssl', ...args]);

describe('ssl create-datasets', () => {
  it('refuses an unknown dataset, listing the supported ones', async () => {
    await expect(run('create-datasets', 'mnist', 'cifar11', '--data-dir', tmp)).rejects.toThrow(
      new UserError("unknown dataset 'cifar11'; supported: mnist, cifar10, cifar100, svhn, svhn_noextra, stl10, custom, all"),
    );
    expect(fs.readdirSync(tmp)).toEqual([]);
  });

  it('defaults to mnist in $ML_DATA, else ./data', () => {
    const saved = process.env.ML_DATA;
    try {
      process.env.ML_DATA = tmp;
      expect(parseCreateDatasetsOptions([], {})).toEqual({ names: ['mnist'], dataDir: tmp, force: false, from: [] });
      delete process.env.ML_DATA;
      expect(parseCreateDatasetsOptions(['mnist', 'mnist'], { force: true })).toEqual({
        names: ['mnist'],
        dataDir: path.resolve('data'),
        force: true,
        from: [],
      });
    } finally {
      if (saved === undefined) delete process.env.ML_DATA;
      else process.env.ML_DATA = saved;
    }
  });

  it("'all' names the originals' datasets; datasets are built in a fixed order", () => {
    expect(parseCreateDatasetsOptions(['stl10', 'all', 'mnist'], { dataDir: tmp }).names).toEqual(['mnist', 'cifar10', 'cifar100', 'svhn', 'svhn_noextra', 'stl10']);
    expect(parseCreateDatasetsOptions(['svhn_noextra', 'svhn'], { dataDir: tmp }).names).toEqual(['svhn', 'svhn_noextra']);
  });

  it('takes --from more than once, and checks the paths before anything is built', async () => {
    const a = path.join(tmp, 'a.tar.gz');
    await expect(run('create-datasets', 'mnist', 'cifar10', '--data-dir', tmp, '--from', tmp, '--from', a)).rejects.toThrow(
      new UserError(`--from ${a}: no such file or folder`),
    );
    expect(fs.readdirSync(tmp)).toEqual([]);
  });

  it('builds mnist and says what it wrote, then skips it', async () => {
    await run('create-datasets', '--data-dir', tmp);
    expect(logs).toEqual([
      `Wrote ${path.join(tmp, 'mnist-train.tfrecord')} (8000 records)`,
      `Wrote ${path.join(tmp, 'mnist-test.tfrecord')} (2000 records)`,
    ]);
    logs.length = 0;
    await run('create-datasets', 'mnist', '--data-dir', tmp);
    expect(logs).toEqual(['Skipping already installed: mnist']);
  });

  it('documents every option with its default', async () => {
    const p = program();
    await expect(p.cmd.parseAsync(['node', 'ssl', 'create-datasets', '--help'])).rejects.toThrow();
    const help = p.help().replace(/\s+/g, ' '); // commander wraps to the terminal width
    expect(help).toContain('--data-dir <dir> data root (default: $ML_DATA, else ./data)');
    expect(help).toContain('--force rebuild datasets whose files exist (default: skip them)');
    expect(help).not.toContain('(default: false)');
    expect(help).toContain('the first round(0.8·n) digits of each class go to mnist-train');
    expect(help).toContain(
      'datasets to build: mnist, cifar10, cifar100, svhn, svhn_noextra, stl10, all (= cifar10 cifar100 svhn svhn_noextra stl10), custom (default: mnist)',
    );
    expect(help).toContain('--from <path> a published archive or .mat file, or a folder holding them or their extracted files; repeatable.');
    expect(help).toContain('(default: <data-dir>/downloads/, else download)');
    expect(help).toContain('--name <name> custom: name of the dataset (required with custom)');
    expect(help).toContain('--unlabeled-dir <dir> custom: folder of unlabelled images, written to <name>-unlabel.tfrecord with label 0 (default: none)');
    expect(help).toContain('--img-size <n> custom: resize every image to <n> x <n> (default: keep the size all images share)');
    expect(help).toContain('http://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz');
    expect(help).not.toContain('(default: [])');
  });

  it('rejects a bad --img-size', async () => {
    await expect(run('create-datasets', 'custom', '--img-size', '0')).rejects.toThrow(/--img-size <n>' argument '0' is invalid. must be at least 1/);
  });
});

describe('ssl extract-accuracy', () => {
  it('prints the stats and where it saved them', async () => {
    const w = new EventWriter(path.join(tmp, 'tf'));
    [90, 91, 92.5].forEach((v, i) => w.scalars(i + 1, { accuracy: v }));
    w.close();
    await run('extract-accuracy', tmp);
    const saved = path.join(tmp, 'stats', 'accuracy.json');
    expect(logs).toEqual([fs.readFileSync(saved, 'utf8'), `Saved: ${saved}`]);
    expect(JSON.parse(fs.readFileSync(saved, 'utf8'))).toEqual({ last01: 92.5, last10: 91, last20: 91, last50: 91 });
  });

  it('passes --tag through', async () => {
    const w = new EventWriter(path.join(tmp, 'tf'));
    w.scalars(1, { accuracy: 50, 'accuracy/valid': 40 });
    w.close();
    await run('extract-accuracy', tmp, '--tag', 'accuracy/valid');
    expect(JSON.parse(fs.readFileSync(path.join(tmp, 'stats', 'accuracy.json'), 'utf8')).last01).toBe(40);
  });

  it('documents --tag with its default', async () => {
    const p = program();
    await expect(p.cmd.parseAsync(['node', 'ssl', 'extract-accuracy', '--help'])).rejects.toThrow();
    expect(p.help().replace(/\s+/g, ' ')).toContain(
      '--tag <tag> scalar tag of the test accuracy (default: accuracy_test, else accuracy, whichever the files hold)',
    );
  });
});
