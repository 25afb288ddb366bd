import { Command, InvalidArgumentError, Option } from 'commander';
import { codeVersion } from '../generated/sql.js';
import { describeError } from '../errors.js';
import { applyCommand, planCommand, type ApplyOptions } from './commands/apply.js';
import { exportCommand } from './commands/export.js';
import { templatesCommand } from './commands/templates.js';
import { deployCommand, rollbackCommand, trainCommand, trainingRunsCommand } from './commands/training.js';
import { demoCommand, type DemoOptions } from './commands/demo.js';
import { failuresCommand } from './commands/failures.js';
import { installCommand } from './commands/install.js';
import { removeCommand } from './commands/remove.js';
import { serveCommand, type ServeOptions } from './commands/serve.js';
import { startCommand, type StartOptions } from './commands/start.js';
import { statusCommand } from './commands/status.js';
import { uiCommand } from './commands/ui.js';
import { waitCommand } from './commands/wait.js';
import { nameAndUri } from './context.js';
import type { DeployOptions } from '../backends/types.js';
import { metricsAddress } from './metrics-server.js';

const uriHelp = 'PostgreSQL connection URI (default: $SUPERDUPER_URI, then $DATABASE_URL)';

/** A repeatable option's values, in order (commander's documented idiom). */
const collect = (value: string, previous: string[]) => [...previous, value];

/** A duration option in seconds: a number, zero or more (fractions allowed). */
function seconds(value: string): number {
  const parsed = Number(value);
  if (value.trim() === '' || !Number.isFinite(parsed) || parsed < 0) {
    throw new InvalidArgumentError(`"${value}" is not a number of seconds (0 or more).`);
  }
  return parsed;
}

/** An integer option from min to max, refused with what was expected (Number('abc') is NaN, which commander would take). */
function integer(min: number, max: number, what: string): (value: string) => number {
  return (value) => {
    const parsed = Number(value);
    if (!/^\s*-?\d+\s*$/.test(value) || parsed < min || parsed > max) {
      throw new InvalidArgumentError(`"${value}" is not ${what} (a whole number from ${min} to ${max}).`);
    }
    return parsed;
  };
}

export function buildProgram(): Command {
  const program = new Command('superduper')
    .description('AI models kept current on your database tables, and vector search from SQL.')
    .version(codeVersion)
    .showHelpAfterError();

  const logLevel = () => new Option('--log-level <level>', 'log level').choices(['debug', 'info', 'warn', 'error']).default('warn');
  // Read where loggers are made (src/logger.ts), as SUPERDUPER_LOG_FORMAT.
  const logFormat = () =>
    new Option('--log-format <format>', 'logs as lines for people or JSON lines (default: pretty on a terminal, JSON otherwise)')
      .choices(['pretty', 'json'])
      .argParser((value: string) => {
        if (value !== 'pretty' && value !== 'json') throw new InvalidArgumentError('Allowed choices are pretty, json.');
        process.env.SUPERDUPER_LOG_FORMAT = value;
        return value;
      });
  const port = () => new Option('--port <port>', 'TCP port of the wire endpoint (0: any free port)').default(5433).argParser(integer(0, 65535, 'a TCP port'));
  const host = () => new Option('--host <host>', 'address of the wire endpoint (anyone who reaches it is the superuser)').default('127.0.0.1');
  // The embedded database has one session that clients take in turns (docs/embedded.md).
  const idleTimeout = () =>
    new Option('--idle-in-transaction-timeout <seconds>', 'roll back a client idle in a transaction this long, so that the others go on (0: never)')
      .default(30)
      .argParser(seconds);
  const waitTimeout = () =>
    new Option('--wait-timeout <seconds>', 'fail a statement that has waited this long for the session, naming the client holding it (0: wait forever)')
      .default(60)
      .argParser(seconds);

  program
    .command('demo')
    .description('the whole product on an embedded PostgreSQL: documents, a listener with the default embedder, semantic search from SQL')
    .option('--dir <folder>', 'where the embedded database keeps its data', '.superduper/demo')
    .option('--reset', 'delete the folder first and start over')
    .option('--serve', 'then keep running with a PostgreSQL endpoint for psql')
    .addOption(host())
    .addOption(port())
    .addOption(idleTimeout())
    .addOption(waitTimeout())
    .addOption(logLevel())
    .addOption(logFormat())
    .action((options: Omit<DemoOptions, 'reset' | 'serve'> & { reset?: boolean; serve?: boolean }) =>
      demoCommand({ ...options, reset: options.reset ?? false, serve: options.serve ?? false }),
    );

  program
    .command('serve')
    .description('serve an embedded database folder on a PostgreSQL endpoint for psql, with a sidecar computing outputs')
    .argument('[dir]', 'the embedded database folder', '.superduper/demo')
    .addOption(host())
    .addOption(port())
    .addOption(idleTimeout())
    .addOption(waitTimeout())
    .addOption(logLevel())
    .addOption(logFormat())
    .action((dir: string, options: ServeOptions) => serveCommand(dir, options));

  program
    .command('install')
    .description('install or upgrade the superduper SQL layer (schema "superduper") in a database')
    .argument('[uri]', uriHelp)
    .action((uri?: string) => installCommand(uri));

  program
    .command('apply')
    .description('apply the components (models, listeners) of a JSON file, and show progress while their backfill runs')
    .argument('<file>', 'a package (folder or .zip), a template of the gallery by name (superduper templates), or a JSON file: a component spec, an array of them, or {"components": [...]}')
    .argument('[uri]', uriHelp)
    .option('--no-wait', 'return at once instead of showing the backfill progress')
    .option('--dry-run', 'show the plan (what would be created, updated, rebuilt or removed) and apply nothing')
    .option('--yes', 'apply a plan that removes or rebuilds outputs without asking')
    .option('--var <name=value>', 'a template variable (repeatable)', collect, [])
    .action((file: string, uri: string | undefined, options: ApplyOptions & { var: string[] }) =>
      applyCommand(file, uri, { ...options, vars: options.var }),
    );

  program
    .command('templates')
    .description('list the gallery of application templates shipped with superduper, with their variables')
    .option('--json', 'print JSON')
    .action((options: { json?: boolean }) => templatesCommand({ json: options.json ?? false }));

  program
    .command('export')
    .description('write an application into a package: a folder, or a .zip (docs/packaging.md)')
    .argument('<application>', 'the application\'s name')
    .argument('<target>', 'a new folder, or a file ending in .zip')
    .argument('[uri]', uriHelp)
    .action((name: string, target: string, uri: string | undefined) => exportCommand(name, target, uri));

  program
    .command('plan')
    .description('show what applying a JSON file would create, update, rebuild or remove, with the rows to compute; applies nothing')
    .argument('<file>', 'a package or a JSON file, as for apply')
    .argument('[uri]', uriHelp)
    .option('--json', 'print JSON')
    .option('--var <name=value>', 'a template variable (repeatable)', collect, [])
    .action((file: string, uri: string | undefined, options: { json?: boolean; var: string[] }) =>
      planCommand(file, uri, { json: options.json ?? false, vars: options.var }),
    );

  program
    .command('start')
    .description('run a sidecar: compute listener outputs as rows change (stop with Ctrl-C or SIGTERM)')
    .argument('[uri]', uriHelp)
    .addOption(
      new Option('--reconcile-ms <ms>', 'look for work this often even without notifications').default(2000).argParser(integer(10, 3_600_000, 'milliseconds')),
    )
    .addOption(new Option('--log-level <level>', 'log level').choices(['debug', 'info', 'warn', 'error']).default('info'))
    .addOption(logFormat())
    .addOption(new Option('--health-port <port>', 'serve /healthz and /readyz on this port (see docs/operations.md)').argParser(integer(0, 65535, 'a TCP port')))
    .addOption(new Option('--health-host <host>', 'address of the health endpoint').default('127.0.0.1'))
    .addOption(new Option('--metrics <host:port>', 'serve Prometheus metrics at /metrics there (a port alone: 127.0.0.1)').argParser(metricsAddress))
    .addOption(new Option('--ui <host:port>', 'serve the status page there too, as superduper ui does (a port alone: 127.0.0.1)').argParser(metricsAddress))
    .action((uri: string | undefined, options: StartOptions) => startCommand(uri, options));

  program
    .command('ui')
    .description('serve a status page: listeners, lineage, failures with retry, and search, updating live (PostgreSQL)')
    .argument('[uri]', uriHelp)
    .option('--host <host>', 'address to serve on (anyone who reaches it acts as the database role in the URI)', '127.0.0.1')
    .addOption(new Option('--port <port>', 'TCP port (0: any free port)').default(8765).argParser(integer(0, 65535, 'a TCP port')))
    .action((uri: string | undefined, options: { host: string; port: number }) => uiCommand(uri, options));

  program
    .command('status')
    .description('pending, in flight, failed and done per listener, and the sidecars')
    .argument('[uri]', uriHelp)
    .option('--json', 'print JSON')
    .action((uri: string | undefined, options: { json?: boolean }) => statusCommand(uri, { json: options.json ?? false }));

  program
    .command('remove')
    .description('remove a listener (its triggers, queue and, unless --keep-outputs, its outputs), or an unused model')
    .argument('<name>', 'listener or model name')
    .argument('[uri]', uriHelp)
    .option('--keep-outputs', 'keep the outputs table')
    .option('--cascade', 'also remove listeners that read this one\'s outputs')
    .action((name: string, uri: string | undefined, options: { keepOutputs?: boolean; cascade?: boolean }) =>
      removeCommand(name, uri, { keepOutputs: options.keepOutputs ?? false, cascade: options.cascade ?? false }),
    );

  program
    .command('wait')
    .description('wait until every change committed before now has its output (read your writes); exit 1 if rows failed')
    .argument('[listener]', 'only this listener and those it reads from (default: every listener)')
    .argument('[uri]', uriHelp)
    .addOption(new Option('--timeout <seconds>', 'give up after this long').default(30).argParser(seconds))
    .action((listener: string | undefined, uri: string | undefined, options: { timeout: number }) => waitCommand(listener, uri, options));

  program
    .command('failures')
    .description('rows whose model call failed for good, with the error; --retry queues them again')
    .argument('[listener]', 'only this listener')
    .argument('[uri]', uriHelp)
    .option('--retry', 'queue the listener\'s failed rows again')
    .option('--json', 'print JSON')
    .action((first: string | undefined, second: string | undefined, options: { retry?: boolean; json?: boolean }) => {
      // The URI first, as this command once took it, still works.
      const { name, uri } = nameAndUri(first, second);
      return failuresCommand(name, uri, { retry: options.retry ?? false, json: options.json ?? false });
    });

  program
    .command('train')
    .description('queue a run of a trainer; a running sidecar fits it and deploys it if its strategy says so')
    .argument('<trainer>', 'the trainer (or its model)')
    .argument('[uri]', uriHelp)
    .action((trainer: string, uri: string | undefined) => trainCommand(trainer, uri));

  program
    .command('deploy')
    .description("put a trainer's run in service: the best score, the most recent, or a pinned run")
    .argument('<trainer>', 'the trainer (or its model)')
    .argument('[uri]', uriHelp)
    .addOption(new Option('--strategy <strategy>', "which run (default: the trainer's deploy strategy)").choices(['best_score', 'most_recent', 'pinned']))
    .addOption(new Option('--run <n>', 'the run to pin (implies --strategy pinned)').argParser(integer(1, 2_147_483_647, 'a run number')))
    .option('--metric <name>', "for best_score: the metric to rank by (default: the trainer's)")
    .option('--json', 'print JSON')
    .action((trainer: string, uri: string | undefined, options: { strategy?: DeployOptions['strategy']; run?: number; metric?: string; json?: boolean }) =>
      deployCommand(trainer, uri, {
        ...(options.strategy ? { strategy: options.strategy } : {}),
        ...(options.run !== undefined ? { run: options.run } : {}),
        ...(options.metric ? { metric: options.metric } : {}),
        json: options.json ?? false,
      }),
    );

  program
    .command('rollback')
    .description("deploy again a trainer's run deployed before the current one (and pin it)")
    .argument('<trainer>', 'the trainer (or its model)')
    .argument('[uri]', uriHelp)
    .option('--json', 'print JSON')
    .action((trainer: string, uri: string | undefined, options: { json?: boolean }) => rollbackCommand(trainer, uri, { json: options.json ?? false }));

  program
    .command('training-runs')
    .description("trainers' runs: state, metrics, rows, duration, and whether each was deployed and why")
    .argument('[trainer]', 'only this trainer')
    .argument('[uri]', uriHelp)
    .option('--json', 'print JSON')
    .action((first: string | undefined, second: string | undefined, options: { json?: boolean }) => {
      const { name, uri } = nameAndUri(first, second);
      return trainingRunsCommand(name, uri, { json: options.json ?? false });
    });

  return program;
}

/**
 * Exit status of an error no retry can fix (a refused login, a missing database
 * or layer, a layer newer than this code): EX_CONFIG from sysexits.h, so that a
 * supervisor can tell it from a crash (systemd: RestartPreventExitStatus=78).
 */
export const EXIT_CANNOT_RETRY = 78;

export async function main(argv: string[]): Promise<number> {
  // A reader that stops early (| head, | jq on the first match) closes the
  // pipe: what is left to print has nobody to read it, which is not an error.
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error;
    process.exit(process.exitCode ?? 0);
  });
  try {
    await buildProgram().parseAsync(argv);
    return 0;
  } catch (error) {
    process.stderr.write(`error: ${describeError(error)}\n`);
    const code = (error as { code?: string }).code;
    return code === 'SUPERDUPER_FATAL' || code === 'SUPERDUPER_NEWER_DATABASE' ? EXIT_CANNOT_RETRY : 1;
  }
}
