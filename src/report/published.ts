/**
 * Published results that `ssl report` prints beside a configuration's own numbers. Only figures
 * that two independent places agree on are listed; each names where it comes from. Papers quote
 * error rates or accuracies in percent on the test set, as the mean over several splits (usually
 * five); `value` is kept as published and `metric` says which it is.
 *
 * Keys: `algo` is the `--algo` name, `dataset` the base dataset name as ssl spells it (a
 * `<name>_aug<N>` dataset is looked up by its base name), `labels` the labelled examples.
 */
export interface PublishedResult {
  algo: string;
  dataset: string;
  labels: number;
  metric: 'error' | 'accuracy';
  value: number;
  source: string;
}

const MIXMATCH = 'Berthelot et al. 2019, "MixMatch: A Holistic Approach to Semi-Supervised Learning", arXiv:1905.02249, CIFAR-10 results with WRN-28-2';
const REALMIX_ABSTRACT = 'Nair, Fuentes Alonso, Beltramelli 2019, "RealMix: Towards Realistic Semi-Supervised Deep Learning Algorithms", arXiv:1912.08766, abstract';
const REALMIX_TABLE = 'Nair, Fuentes Alonso, Beltramelli 2019, "RealMix", arXiv:1912.08766, results table (as listed by Papers with Code)';
const FIXMATCH_ABSTRACT = 'Sohn et al. 2020, "FixMatch: Simplifying Semi-Supervised Learning with Consistency and Confidence", arXiv:2001.07685, abstract';

export const PUBLISHED: PublishedResult[] = [
  { algo: 'mixmatch', dataset: 'cifar10', labels: 250, metric: 'error', value: 11.08, source: MIXMATCH },
  { algo: 'mixmatch', dataset: 'cifar10', labels: 1000, metric: 'error', value: 7.75, source: MIXMATCH },
  { algo: 'mixmatch', dataset: 'cifar10', labels: 2000, metric: 'error', value: 7.03, source: MIXMATCH },
  { algo: 'mixmatch', dataset: 'cifar10', labels: 4000, metric: 'error', value: 6.24, source: MIXMATCH },
  { algo: 'realmix', dataset: 'cifar10', labels: 250, metric: 'error', value: 9.79, source: REALMIX_ABSTRACT },
  { algo: 'realmix', dataset: 'cifar10', labels: 4000, metric: 'error', value: 6.38, source: REALMIX_TABLE },
  { algo: 'realmix', dataset: 'svhn', labels: 250, metric: 'error', value: 3.53, source: REALMIX_TABLE },
  { algo: 'fixmatch', dataset: 'cifar10', labels: 40, metric: 'accuracy', value: 88.61, source: FIXMATCH_ABSTRACT },
  { algo: 'fixmatch', dataset: 'cifar10', labels: 250, metric: 'accuracy', value: 94.93, source: FIXMATCH_ABSTRACT },
];

/** The published test accuracy (percent) for a configuration, if one is known. */
export function publishedAccuracy(algo: string, dataset: string, labels: number | null): { accuracy: number; source: string } | null {
  if (labels === null) return null;
  const base = dataset.replace(/_aug[1-9][0-9]*$/, '');
  const r = PUBLISHED.find((p) => p.algo === algo && p.dataset === base && p.labels === labels);
  if (!r) return null;
  return { accuracy: r.metric === 'accuracy' ? r.value : Math.round((100 - r.value) * 100) / 100, source: r.source };
}
