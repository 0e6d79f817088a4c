import { Command } from 'commander';
import { describeBackend, nativeInstallState, selectBackend } from '../backend/select';

/** `ssl env`: which tfjs backend this machine gets, how it got there, and why others were skipped. */
export function register(program: Command): void {
  program
    .command('env')
    .summary('show the backend in use, and why')
    .description('show the tfjs backend in use, where it comes from, and why the others were skipped')
    .option('--backend <name>', 'tensorflow, wasm, cpu or auto (default: $SSL_BACKEND, else auto)')
    .option('--json', 'print one JSON object instead of text', false)
    .action(async (o: { backend?: string; json: boolean }) => {
      const report = await selectBackend(o.backend ?? process.env.SSL_BACKEND);
      const native = nativeInstallState();
      if (o.json) {
        const out = { backend: report, native, node: process.version, platform: `${process.platform}-${process.arch}` };
        process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
        return;
      }
      const lines = describeBackend(report);
      const b = native.buildInfo;
      if (b) lines.push(`Native build: TensorFlow ${b.tfVersion} from ${b.wheel.file} (${b.wheel.given}), built ${b.builtAt}${b.gpu ? ', sees a GPU' : ''}; log ${b.log}`);
      const last = native.lastInstall;
      if (last) lines.push(`Last native install step: ${last.outcome}: ${last.detail} (${last.at})`);
      lines.push(`Node ${process.version} on ${process.platform}-${process.arch}`);
      process.stdout.write(`${lines.join('\n')}\n`);
    });
}
