import { UserError } from '../errors';

/**
 * The class-mismatch experiment of the RealMix README (section 2.3), on CIFAR-10
 * (0 airplane, 1 automobile, 2 bird, 3 cat, 4 deer, 5 dog, 6 frog, 7 horse, 8 ship, 9 truck):
 * the labelled and test sets keep the six animal classes 2..7 ("CIFAR-6"); the unlabelled set
 * keeps four classes, of which 0, 1, 2, 3 or all 4 are non-animal classes that have no labelled
 * examples: 0%, 25%, 50%, 75% or 100% mismatch. Each step swaps the next animal class (4, 5, 6, 7)
 * for the next non-animal class (0, 1, 8, 9), which is exactly the README's table.
 */

export const MISMATCH_LABELLED_CLASSES: readonly number[] = [2, 3, 4, 5, 6, 7];

export const MISMATCH_UNLABELLED_CLASSES: Readonly<Record<number, readonly number[]>> = {
  0: [4, 5, 6, 7],
  25: [0, 5, 6, 7],
  50: [0, 1, 6, 7],
  75: [0, 1, 8, 7],
  100: [0, 1, 8, 9],
};

export const MISMATCH_PERCENTS: readonly number[] = Object.keys(MISMATCH_UNLABELLED_CLASSES).map(Number);

export interface ClassSelection {
  /** Classes kept in the labelled and test sets (and, under remap, their order gives the new labels). */
  classes: number[];
  /** Classes kept in the unlabelled set. */
  unlabelClasses: number[];
}

export function mismatchSetting(percent: number): ClassSelection {
  const unlabel = MISMATCH_UNLABELLED_CLASSES[percent];
  if (!unlabel) throw new UserError(`--mismatch must be one of ${MISMATCH_PERCENTS.join(', ')} (percent of unlabelled classes outside the labelled ones), got ${percent}`);
  return { classes: [...MISMATCH_LABELLED_CLASSES], unlabelClasses: [...unlabel] };
}

/** Percentage of the unlabelled classes that are not labelled classes: 25 for {0,5,6,7} against 2..7. */
export function mismatchPercent(sel: ClassSelection): number {
  if (sel.unlabelClasses.length === 0) return 0;
  const labelled = new Set(sel.classes);
  const outside = sel.unlabelClasses.filter((c) => !labelled.has(c)).length;
  return (100 * outside) / sel.unlabelClasses.length;
}
