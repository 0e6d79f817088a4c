import { augCopyName, formatSplitName, formatTrainDatasetName, parseSplitName, parseTrainDatasetName } from '../src/data/dataset-name';
import { UserError } from '../src/errors';

describe('training dataset names', () => {
  it('parses <name>.<seed>@<labelled>-<valid>', () => {
    expect(parseTrainDatasetName('mnist.1@100-1000')).toEqual({ name: 'mnist', base: 'mnist', seed: 1, size: 100, valid: 1000 });
    expect(parseTrainDatasetName('svhn_noextra.0@250-1')).toEqual({ name: 'svhn_noextra', base: 'svhn_noextra', seed: 0, size: 250, valid: 1 });
  });

  it('splits off _aug<N> into base and augCopies', () => {
    expect(parseTrainDatasetName('cifar10_aug50.3@250-5000')).toEqual({
      name: 'cifar10_aug50',
      base: 'cifar10',
      augCopies: 50,
      seed: 3,
      size: 250,
      valid: 5000,
    });
    // not an aug suffix: nothing before it, or a zero count
    expect(parseTrainDatasetName('_aug5.1@10-0')).toEqual({ name: '_aug5', base: '_aug5', seed: 1, size: 10, valid: 0 });
    expect(parseTrainDatasetName('x_aug0.1@10-0')).toEqual({ name: 'x_aug0', base: 'x_aug0', seed: 1, size: 10, valid: 0 });
  });

  it.each([
    ['mnist', "no '.<seed>'"],
    ['mnist.1@100', "no '-<valid>'"],
    ['mnist.1-100', "no '@<size>'"],
    ['mn-ist.1@100-10', 'letters, digits and _'],
    ['cifar.10.1@100-10', 'non-negative integers'],
    ['mnist.01@100-10', 'without leading zeros'],
    ['mnist.1@0-10', 'at least 1'],
    ['mnist.1@-5-10', 'non-negative integers'],
    ['', 'empty'],
  ])('rejects %j with the grammar and a reason', (input, reason) => {
    let err: unknown;
    try {
      parseTrainDatasetName(input);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UserError);
    const msg = (err as Error).message;
    expect(msg).toContain(reason);
    expect(msg).toContain('<name>.<seed>@<labelled>-<valid>');
    expect(msg).toContain('e.g. mnist.1@100-1000');
    expect(msg).not.toContain('\n');
  });

  it('formats back to the same string', () => {
    for (const s of ['mnist.1@100-1000', 'cifar10_aug50.3@250-5000', 'stl10.0@1000-1']) {
      expect(formatTrainDatasetName(parseTrainDatasetName(s))).toBe(s);
    }
  });
});

describe('split names', () => {
  it('parses <name>.<seed>@<size>', () => {
    expect(parseSplitName('cifar10.1@250')).toEqual({ name: 'cifar10', base: 'cifar10', seed: 1, size: 250 });
    expect(parseSplitName('cifar10_aug25.2@4000')).toEqual({ name: 'cifar10_aug25', base: 'cifar10', augCopies: 25, seed: 2, size: 4000 });
  });

  it('rejects a training name with the split grammar', () => {
    expect(() => parseSplitName('mnist.1@100-1000')).toThrow(/no '-<valid>' part; expected <name>\.<seed>@<size>, e\.g\. cifar10\.1@250/);
    expect(() => parseSplitName('mnist.1@x')).toThrow(UserError);
  });

  it('formats back to the same string', () => {
    expect(formatSplitName(parseSplitName('mnist.4@40'))).toBe('mnist.4@40');
    expect(formatSplitName({ name: 'svhn', seed: 2, size: 1000 })).toBe('svhn.2@1000');
  });
});

describe('aug-copy names', () => {
  it('appends _aug<N>, and the result parses back to its base and copies', () => {
    expect(augCopyName('cifar10', 50)).toBe('cifar10_aug50');
    expect(parseTrainDatasetName(`${augCopyName('svhn_noextra', 3)}.1@250-5000`)).toMatchObject({ name: 'svhn_noextra_aug3', base: 'svhn_noextra', augCopies: 3 });
    expect(() => augCopyName('cifar10', 0)).toThrow(UserError);
    expect(() => augCopyName('cifar10', 1.5)).toThrow(/at least 1/);
  });
});
