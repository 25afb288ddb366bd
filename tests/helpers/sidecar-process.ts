/**
 * A sidecar in a child process, for tests that kill or signal one.
 *   node --import tsx tests/helpers/sidecar-process.ts <uri> [slow-model-ms]
 * With slow-model-ms it also registers function model "slow" (a text model that
 * takes that long per batch). Prints "ready" once started; SIGTERM stops it
 * gracefully and exits 0.
 */
import { connect } from '../../src/client.js';
import { createLogger } from '../../src/logger.js';
import { functionModel } from '../../src/models/function-runtime.js';

const [uri, slowMs] = process.argv.slice(2);
const db = await connect(uri!, { logger: createLogger(process.env.SUPERDUPER_LOG_LEVEL ?? 'warn') });
if (slowMs) {
  await db.apply(
    functionModel({
      name: 'slow',
      output: { type: 'text' },
      version: 'slow',
      predict: async (inputs: string[]) => {
        await new Promise((resolve) => setTimeout(resolve, Number(slowMs)));
        return inputs.map((text) => text.toUpperCase());
      },
    }),
  );
}
const worker = await db.start({
  reconcileMs: 200,
  heartbeatMs: Number(process.env.SD_HEARTBEAT_MS ?? 500),
  deadAfterMs: Number(process.env.SD_DEAD_AFTER_MS ?? 3000),
});
process.stdout.write(`ready ${worker.id}\n`);
process.once('SIGTERM', async () => {
  await db.close();
  process.stdout.write('stopped\n');
  process.exit(0);
});
