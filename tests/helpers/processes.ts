import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll } from 'vitest';

// Every child started by a test file is killed when the file ends, passed or not.
const children = new Set<ChildProcess>();
afterAll(() => {
  for (const child of children) child.kill('SIGKILL');
});

export interface SidecarProcess {
  child: ChildProcess;
  id: string;
  output: () => string;
  exited: Promise<number | null>;
}

/** Starts tests/helpers/sidecar-process.ts and waits until it says "ready". */
export async function startSidecarProcess(uri: string, options: { slowModelMs?: number; env?: Record<string, string> } = {}): Promise<SidecarProcess> {
  const args = ['--import', 'tsx', 'tests/helpers/sidecar-process.ts', uri];
  if (options.slowModelMs !== undefined) args.push(String(options.slowModelMs));
  const child = spawn(process.execPath, args, {
    env: { ...process.env, SUPERDUPER_LOG_LEVEL: 'warn', ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  child.once('exit', () => children.delete(child));
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const id = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`sidecar did not start: ${output}`)), 30_000);
    child.stdout!.on('data', () => {
      const match = /ready (\S+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`sidecar exited with ${code}: ${output}`));
    });
  });
  return { child, id, output: () => output, exited };
}

export interface CliSidecar {
  child: ChildProcess;
  /** Everything it wrote to stderr (pino's JSON lines) and stdout. */
  output: () => string;
  /** Its log lines, parsed. */
  logs: () => Array<{ level: number; msg: string; [field: string]: unknown }>;
  exited: Promise<number | null>;
  /** Whether it is still running. */
  running: () => boolean;
}

/**
 * Starts `superduper start <uri>` (the CLI, from source) as a user would, and
 * waits for its "sidecar started" line. Its settings are the defaults unless
 * args say otherwise.
 */
export async function startCliSidecar(uri: string, options: { args?: string[]; env?: Record<string, string> } = {}): Promise<CliSidecar> {
  const args = options.args ?? [];
  const logLevel = args.includes('--log-level') ? [] : ['--log-level', 'info'];
  const child = spawn(process.execPath, ['--import', 'tsx', 'tests/helpers/cli.ts', 'start', uri, ...logLevel, ...args], {
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let exitCode: number | null | undefined;
  child.once('exit', (code) => {
    children.delete(child);
    exitCode = code;
  });
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const logs = () =>
    output
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as { level: number; msg: string });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`sidecar did not start: ${output}`)), 30_000);
    const check = () => {
      if (logs().some((line) => line.msg === 'sidecar started')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stderr!.on('data', check);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`sidecar exited with ${code}: ${output}`));
    });
  });
  return { child, output: () => output, logs, exited, running: () => exitCode === undefined };
}
