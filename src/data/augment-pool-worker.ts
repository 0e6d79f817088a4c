import { parentPort } from 'worker_threads';
import { AugmentationCache, runAugmentTask } from './augment-pool';
import { serveTasks } from './augment-workers';

/** Worker thread entry of AugmentPool (./augment-pool.ts). */

const cache = new AugmentationCache();

if (parentPort) {
  serveTasks(parentPort, (task: Parameters<typeof runAugmentTask>[0]) => {
    const reply = runAugmentTask(task, cache);
    return { value: reply, transfer: [reply.images] };
  });
}
