import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Command } from 'commander';
import { register, runRenameFiles } from '../src/commands/rename-files';
import { applyRenames, planRenames } from '../src/data/rename-files';
import { UserError } from '../src/errors';

/**
 * The renaming of RealMix's rename_files.py, checked against Python itself: the Python below follows
 * the behaviour described in workflow-spec 1.5 (recursive glob of `**` / `*.<ext>`, sorted absolute
 * paths, 'all' folders skipped but counted, zfill to the digits of count + start, class = folder
 * name without '-'), so Python's own glob and sort decide which files and in which order.
 */
const PYTHON = String.raw`
import glob, json, os, sys
target, start, ext = os.path.abspath(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
files = sorted(glob.glob(os.path.join(target, '**', '*.' + ext), recursive=True))
width = len(str(len(files) + start))
plan = []
for i, f in enumerate(files):
    folder = os.path.basename(os.path.dirname(f))
    if 'all' in folder:
        continue
    plan.append([f, os.path.join(os.path.dirname(f), str(i + start).zfill(width) + '_' + folder.replace('-', '') + '.' + ext)])
print(json.dumps(plan))
`;

let root: string;
beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-rename-'));
});
afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

function touch(rel: string, content = rel): void {
  const p = path.join(root, rel);
  fs.mkdirSync(path.dirname(p), { recursive: true });
  fs.writeFileSync(p, content);
}

/** Every file under root, relative, with its content. */
function tree(): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out[path.relative(root, p)] = fs.readFileSync(p, 'utf8');
    }
  };
  walk(root);
  return out;
}

function pythonPlan(dir: string, start: number, ext: string): Array<[string, string]> {
  const script = path.join(os.tmpdir(), `ssl-rename-${process.pid}.py`);
  fs.writeFileSync(script, PYTHON);
  try {
    const r = spawnSync('python3', [script, dir, String(start), ext], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(r.stderr);
    return JSON.parse(r.stdout);
  } finally {
    fs.rmSync(script, { force: true });
  }
}

function sampleTree(): void {
  for (const f of ['train/cat/b.png', 'train/cat/a.png', 'train/cat/Z.png', 'train/cat/c.jpg', 'train/hot-dog/x.png', 'train/hot-dog/é.png', 'train/small/s.png', 'train/cat/.hidden.png', 'train/.cache/h.png', 'top.png', 'train/dog/deep/d.png']) touch(f);
}

describe('planRenames', () => {
  it.each([
    [0, 'png'],
    [7, 'png'],
    [95, 'png'],
    [0, 'jpg'],
  ] as const)('matches the original at --index %d --filetype %s', (start, ext) => {
    sampleTree();
    const plan = planRenames({ dir: root, start, filetype: ext });
    const ours = [...plan.moves.map((m) => [m.from, m.to]), ...plan.unchanged.map((f) => [f, f])].sort();
    expect(ours).toEqual(pythonPlan(root, start, ext).sort());
    expect(plan.total).toBe(ext === 'png' ? 8 : 1);
  });

  it('names files <n>_<class> with the number padded to the digits of count + start', () => {
    sampleTree();
    const plan = planRenames({ dir: root, start: 95 });
    const rel = (p: string) => path.relative(root, p);
    expect(plan.moves.map((m) => `${rel(m.from)} -> ${rel(m.to)}`)).toEqual([
      'top.png -> 095_' + path.basename(root).replace(/-/g, '') + '.png',
      'train/cat/Z.png -> train/cat/096_cat.png',
      'train/cat/a.png -> train/cat/097_cat.png',
      'train/cat/b.png -> train/cat/098_cat.png',
      'train/dog/deep/d.png -> train/dog/deep/099_deep.png',
      'train/hot-dog/x.png -> train/hot-dog/100_hotdog.png',
      'train/hot-dog/é.png -> train/hot-dog/101_hotdog.png',
    ]);
    expect(plan.skipped.map(rel)).toEqual(['train/small/s.png']);
  });

  it('can skip no folder, or another word', () => {
    sampleTree();
    expect(planRenames({ dir: root, skip: false }).skipped).toEqual([]);
    expect(planRenames({ dir: root, skip: 'cat' }).skipped.map((p) => path.relative(root, p))).toEqual(['train/cat/Z.png', 'train/cat/a.png', 'train/cat/b.png']);
  });
});

describe('applyRenames', () => {
  it('renames in place, keeps every file and its content, and a second run changes nothing', () => {
    sampleTree();
    const before = Object.values(tree()).sort();
    const plan = planRenames({ dir: path.join(root, 'train') });
    expect(applyRenames(plan)).toBe(6);
    const after = tree();
    expect(Object.values(after).sort()).toEqual(before);
    expect(after['train/cat/0_cat.png']).toBe('train/cat/Z.png');
    expect(after['train/hot-dog/5_hotdog.png']).toBe('train/hot-dog/é.png');
    const again = planRenames({ dir: path.join(root, 'train') });
    expect(again.moves).toEqual([]);
    expect(again.unchanged).toHaveLength(6);
  });

  it('goes through temporary names when new names are names still to be freed', () => {
    for (let i = 0; i < 5; i++) touch(`cls/${i}_cls.png`, `file ${i}`);
    // a new file sorting first shifts every number by one: 0_cls -> 1_cls -> ... -> 5_cls
    touch('cls/!new.png', 'new');
    const plan = planRenames({ dir: root });
    expect(plan.moves).toHaveLength(6);
    applyRenames(plan);
    expect(tree()).toEqual({ 'cls/0_cls.png': 'new', 'cls/1_cls.png': 'file 0', 'cls/2_cls.png': 'file 1', 'cls/3_cls.png': 'file 2', 'cls/4_cls.png': 'file 3', 'cls/5_cls.png': 'file 4' });
  });

  it('refuses, renaming nothing, when a new name is taken by something else', () => {
    touch('cat/a.png');
    touch('cat/b.png');
    fs.mkdirSync(path.join(root, 'cat', '1_cat.png'));
    const before = tree();
    const e = (() => {
      try {
        planRenames({ dir: root });
      } catch (x) {
        return x as Error;
      }
      throw new Error('expected an error');
    })();
    expect(e).toBeInstanceOf(UserError);
    expect(e.message).toMatch(/1 new name is taken by other files, e\.g\. cat\/b\.png -> cat\/1_cat\.png; nothing was renamed/);
    expect(tree()).toEqual(before);
  });

  it('names a missing folder, an empty one, and a bad index', () => {
    expect(() => planRenames({ dir: path.join(root, 'nope') })).toThrow(/is not a folder/);
    expect(() => planRenames({ dir: root })).toThrow(/no \*\.png files .*--filetype jpg/);
    touch('c/x.png');
    expect(() => planRenames({ dir: root, start: -1 })).toThrow(/--index must be a whole number/);
  });
});

describe('ssl rename-files command', () => {
  it('documents its options; --dry-run prints the plan and changes nothing', async () => {
    const p = new Command().exitOverride().configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
    register(p);
    const help = p.commands[0].helpInformation();
    expect(help).toMatch(/-t, --target-dir <dir>.*required/s);
    expect(help).toMatch(/-i, --index <n>.*\(default: 0\)/s);
    expect(help).toMatch(/-f, --filetype <type>.*\(default:\s+"png"\)/s);
    expect(help).toMatch(/--skip <text>.*\(default:\s+"all"\)/s);
    expect(help).toMatch(/--no-skip/);
    expect(help).toMatch(/--dry-run.*\(default:\s+false\)/s);

    touch('dog/b.png');
    touch('dog/a.png');
    const lines: string[] = [];
    jest.spyOn(console, 'log').mockImplementation((l: string) => void lines.push(l));
    try {
      await p.parseAsync(['rename-files', '-t', root, '--dry-run'], { from: 'user' });
    } finally {
      jest.restoreAllMocks();
    }
    expect(lines).toEqual(['dog/a.png -> dog/0_dog.png', 'dog/b.png -> dog/1_dog.png', `Would rename 2 of 2 .png files under ${root}`]);
    expect(Object.keys(tree()).sort()).toEqual(['dog/a.png', 'dog/b.png']);

    const out: string[] = [];
    runRenameFiles({ targetDir: root, index: 0, filetype: 'png', skip: 'all', dryRun: false }, (l) => out.push(l));
    expect(out).toEqual([`Renamed 2 of 2 .png files under ${root}`]);
    expect(Object.keys(tree()).sort()).toEqual(['dog/0_dog.png', 'dog/1_dog.png']);
  });
});
