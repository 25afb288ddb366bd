/**
 * The emulator in a process of its own, for benchmarks:
 *   npx tsx tests/helpers/mongodb-emulator/main.ts --port 27099 [--oplog-size N] [--replica-set rs0]
 * Prints the URI on stdout once listening, serves until SIGTERM or SIGINT.
 */
import { startEmulator } from './index.js';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const emu = await startEmulator({
  port: Number(arg('--port') ?? 27099),
  oplogSize: arg('--oplog-size') ? Number(arg('--oplog-size')) : undefined,
  replicaSetName: arg('--replica-set'),
});
process.stdout.write(`${emu.uri}\n`);

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  await emu.stop();
  process.exit(0);
};
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());
