import { parentPort } from 'worker_threads';
import { getAugmentation } from './augment';
import type { Augmentation } from './augment-base';
import { AugCopyReply, AugCopyTask, runAugCopyTask } from './aug-copy-codec';
import { serveTasks } from './augment-workers';

/** Worker thread entry of aug-copy: decode, augment and encode runs of records (./aug-copy-codec.ts). */

const cache = new Map<string, Augmentation>();
const get = (name: string): Augmentation => {
  let a = cache.get(name);
  if (!a) cache.set(name, (a = getAugmentation(name)));
  return a;
};

if (parentPort) {
  serveTasks<AugCopyTask, AugCopyReply>(parentPort, async (task) => {
    const reply = await runAugCopyTask(task, get);
    return { value: reply, transfer: [reply.buffer] };
  });
}
