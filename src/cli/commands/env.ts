/** Declares `clipseg env`; tfjs and the backends load when the command runs. */
import type { Command } from 'commander';

export function registerEnv(program: Command): void {
  program
    .command('env')
    .description('report the tfjs version, backends, GPU support and cache folders, with hints for missing pieces')
    .option('--json', 'print the report as JSON')
    .action(async (options: { json?: boolean }, command: Command) => {
      const { collectEnvironment, formatEnvironment } = await import('../env.js');
      const globals = command.optsWithGlobals() as { backend?: string };
      const report = await collectEnvironment(globals.backend);
      process.stdout.write(options.json ? `${JSON.stringify(report, null, 2)}\n` : formatEnvironment(report));
    });
}
