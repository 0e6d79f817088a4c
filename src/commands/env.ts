import { Command } from 'commander';
import { BACKEND_HELP, describeBackend, nativeInstallState, selectBackend } from '../backend/select';
import { describeAdapter, probeWebGpu } from '../backend/webgpu';

/** `ssl env`: which tfjs backend this machine gets, how it got there, and why others were skipped. */
export function register(program: Command): void {
  program
    .command('env')
    .summary('show the backend in use, and why')
    .description('show the tfjs backend in use, where it comes from, why the others were skipped, and the WebGPU adapter this machine has')
    .option('--backend <name>', BACKEND_HELP)
    .option('--json', 'print one JSON object instead of text', false)
    .action(async (o: { backend?: string; json: boolean }) => {
      const report = await selectBackend(o.backend ?? process.env.SSL_BACKEND);
      const native = nativeInstallState();
      // the adapter Dawn offers, whichever backend was chosen (a probe in a child process, cached)
      const webgpu = probeWebGpu();
      if (o.json) {
        const out = { backend: report, native, webgpu, node: process.version, platform: `${process.platform}-${process.arch}` };
        process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
        return;
      }
      const lines = describeBackend(report);
      if (report.name !== 'webgpu') {
        if (webgpu.ok) lines.push(`WebGPU (Dawn from webgpu ${webgpu.versions.dawn}, --backend webgpu):`, ...describeAdapter(webgpu.adapter));
        else lines.push(`WebGPU: not available: ${webgpu.reason}`);
      }
      const b = native.buildInfo;
      if (b) lines.push(`Native build: TensorFlow ${b.tfVersion} from ${b.wheel.file} (${b.wheel.given}), built ${b.builtAt}${b.gpu ? ', sees a GPU' : ''}; log ${b.log}`);
      const last = native.lastInstall;
      if (last) lines.push(`Last native install step: ${last.outcome}: ${last.detail} (${last.at})`);
      lines.push(`Node ${process.version} on ${process.platform}-${process.arch}`);
      process.stdout.write(`${lines.join('\n')}\n`);
    });
}
