import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as zlib from 'zlib';
import { readEntry, readTar } from '../src/data/tar';
import { UserError } from '../src/errors';
import { expectClean, fuzzInputs, runFuzz } from './helpers/fuzz';
import { python } from './helpers/python';

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssl-tar-'));
  // python's tarfile writes the archives: GNU, pax and ustar formats, long names, a link, a folder
  python(
    `
import sys, io, tarfile
d = sys.argv[1]
def add(t, name, data):
    ti = tarfile.TarInfo(name); ti.size = len(data); ti.mtime = 0; t.addfile(ti, io.BytesIO(data))
members = [('top/a.bin', bytes(range(256)) * 5), ('top/empty.txt', b''), ('top/' + 'long' * 40 + '.bin', b'long name'),
           ('top/b.txt', b'hello' * 1000)]
for fmt, mode, name in [(tarfile.GNU_FORMAT, 'w:gz', 'gnu.tar.gz'), (tarfile.PAX_FORMAT, 'w:gz', 'pax.tar.gz'), (tarfile.USTAR_FORMAT, 'w', 'plain.tar')]:
    with tarfile.open(d + '/' + name, mode, format=fmt) as t:
        di = tarfile.TarInfo('top'); di.type = tarfile.DIRTYPE; di.mtime = 0; t.addfile(di)
        for n, data in members:
            if fmt == tarfile.USTAR_FORMAT and len(n) > 100 and '/' not in n[-100:]: n = 'top/short.bin'
            add(t, n, data)
        li = tarfile.TarInfo('top/link'); li.type = tarfile.SYMTYPE; li.linkname = 'a.bin'; t.addfile(li)
        add(t, 'top/after-link.bin', b'xyz')
with tarfile.open(d + '/pax-utf8.tar.gz', 'w:gz', format=tarfile.PAX_FORMAT) as t:
    add(t, 'données/é.bin', b'accent')
`,
    dir,
  );
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

async function list(file: string): Promise<Array<{ name: string; type: string; size: number; data: string }>> {
  const out = [];
  for await (const e of readTar(file)) out.push({ name: e.name, type: e.type, size: e.size, data: (await readEntry(e)).toString('latin1') });
  return out;
}

const A = Buffer.from(Array.from({ length: 1280 }, (_, i) => i % 256)).toString('latin1');

describe('readTar', () => {
  it.each(['gnu.tar.gz', 'pax.tar.gz'])('lists %s in order with names, sizes and contents', async (file) => {
    expect(await list(path.join(dir, file))).toEqual([
      { name: 'top', type: 'directory', size: 0, data: '' },
      { name: 'top/a.bin', type: 'file', size: 1280, data: A },
      { name: 'top/empty.txt', type: 'file', size: 0, data: '' },
      { name: `top/${'long'.repeat(40)}.bin`, type: 'file', size: 9, data: 'long name' },
      { name: 'top/b.txt', type: 'file', size: 5000, data: 'hello'.repeat(1000) },
      { name: 'top/link', type: 'other', size: 0, data: '' },
      { name: 'top/after-link.bin', type: 'file', size: 3, data: 'xyz' },
    ]);
  });

  it('reads an uncompressed tar and pax UTF-8 names', async () => {
    const plain = await list(path.join(dir, 'plain.tar'));
    expect(plain.map((e) => e.name)).toEqual(['top', 'top/a.bin', 'top/empty.txt', 'top/short.bin', 'top/b.txt', 'top/link', 'top/after-link.bin']);
    expect(plain[1].data).toBe(A);
    expect(await list(path.join(dir, 'pax-utf8.tar.gz'))).toEqual([{ name: 'données/é.bin', type: 'file', size: 6, data: 'accent' }]);
  });

  it('skips what a consumer leaves unread and stops cleanly when it stops early', async () => {
    const seen: string[] = [];
    for await (const e of readTar(path.join(dir, 'gnu.tar.gz'))) {
      seen.push(e.name);
      if (e.name === 'top/a.bin') {
        for await (const p of e.body()) {
          expect(p.length).toBeGreaterThan(0);
          break; // half-read
        }
      }
      if (e.name === 'top/b.txt') break;
    }
    expect(seen).toEqual(['top', 'top/a.bin', 'top/empty.txt', `top/${'long'.repeat(40)}.bin`, 'top/b.txt']);
  });

  it('reports progress over the compressed bytes', async () => {
    const file = path.join(dir, 'gnu.tar.gz');
    let last: [number, number] = [0, 0];
    for await (const e of readTar(file, { onBytes: (d, t) => (last = [d, t]) })) await readEntry(e);
    expect(last).toEqual([fs.statSync(file).size, fs.statSync(file).size]);
  });

  it('names the file when it is truncated, corrupt or not a tar archive', async () => {
    const gz = fs.readFileSync(path.join(dir, 'gnu.tar.gz'));
    const cut = path.join(dir, 'cut.tar.gz');
    fs.writeFileSync(cut, gz.subarray(0, Math.floor(gz.length * 0.6)));
    await expect(list(cut)).rejects.toThrow(new RegExp(`^${cut}: (archive is truncated|cannot read the archive \\(the compressed data ends early)`));

    const plain = fs.readFileSync(path.join(dir, 'plain.tar'));
    const bad = Buffer.from(plain);
    bad[512 + 10] ^= 0xff; // inside the second header's name
    const badFile = path.join(dir, 'bad.tar');
    fs.writeFileSync(badFile, bad);
    await expect(list(badFile)).rejects.toThrow(`${badFile}: corrupt tar header at byte 512 of the unpacked archive`);

    const cutPlain = path.join(dir, 'cut.tar');
    fs.writeFileSync(cutPlain, plain.subarray(0, 512 + 512 + 700));
    await expect(list(cutPlain)).rejects.toThrow(new RegExp(`^${cutPlain}: archive is truncated`));

    const notTar = path.join(dir, 'text.tar.gz');
    fs.writeFileSync(notTar, zlib.gzipSync(Buffer.from('just some text\n'.repeat(100))));
    await expect(list(notTar)).rejects.toThrow(`${notTar}: not a tar archive`);

    const garbledGz = Buffer.from(gz);
    for (let i = 30; i < garbledGz.length - 10; i += 7) garbledGz[i] ^= 0x33;
    const garbled = path.join(dir, 'garbled.tar.gz');
    fs.writeFileSync(garbled, garbledGz);
    await expect(list(garbled)).rejects.toThrow(new RegExp(`^${garbled}: `));
    await expect(list(garbled)).rejects.toThrow(UserError);

    const empty = path.join(dir, 'empty.tar');
    fs.writeFileSync(empty, '');
    await expect(list(empty)).rejects.toThrow(`${empty}: is empty, not a tar archive`);
    await expect(list(path.join(dir, 'none.tar.gz'))).rejects.toThrow('no such file');
  });
});

describe('readTar under damage', () => {
  it('ends every damaged or random archive in a UserError naming it, or in entries, quickly and without huge buffers', async () => {
    const seeds = ['gnu.tar.gz', 'pax.tar.gz', 'plain.tar'].map((f) => fs.readFileSync(path.join(dir, f)));
    const fuzzDir = fs.mkdtempSync(path.join(dir, 'fuzz-'));
    let n = 0;
    const stats = await runFuzz(
      fuzzInputs({ seeds, mutations: 1200, random: 200, randomMaxBytes: 2048, maxTruncations: 150, seed: 5 }),
      async (input) => {
        const file = path.join(fuzzDir, `${n++}.tar.gz`);
        fs.writeFileSync(file, input.bytes);
        try {
          return { file, entries: await list(file) };
        } finally {
          fs.rmSync(file, { force: true });
        }
      },
      {
        timeoutMs: 3000,
        check: ({ entries }) => {
          for (const e of entries) if (e.data.length !== e.size) throw new Error(`${e.name}: ${e.data.length} bytes read, size says ${e.size}`);
        },
        checkError: (e) => {
          if (!/^\S*\d+\.tar\.gz: /.test(e.message)) throw new Error('error does not name the file');
        },
        // a gzip stream may inflate far beyond its size; what is held is one member at most
        maxAllocBytes: (input) => input.bytes.length * 1032 + 2 ** 20,
      },
    );
    expectClean('tar archives', stats, 1500);
  });
});
