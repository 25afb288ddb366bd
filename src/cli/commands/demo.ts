import { mkdir, rm } from 'node:fs/promises';
import { resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { connect } from '../../client.js';
import { DEMO_INDEX, DEMO_LISTENER, DEMO_TABLE, runDemo } from '../../demo/demo.js';
import { assertDataDirFree } from '../../backends/pglite/data-dir-lock.js';
import { createLogger } from '../../logger.js';
import { serveUntilStopped, type EndpointOptions } from '../serve-embedded.js';

export interface DemoOptions extends EndpointOptions {
  dir: string;
  reset: boolean;
  serve: boolean;
  logLevel: string;
}

/**
 * The product on an embedded PostgreSQL (PGlite + pgvector) in a folder:
 * nothing to install, no model download, no API key.
 */
export async function demoCommand(options: DemoOptions): Promise<void> {
  const started = performance.now();
  const dir = resolve(options.dir);
  const write = (text: string) => process.stdout.write(text);
  if (options.reset) {
    await assertDataDirFree(dir); // never delete a database another process has open
    await rm(dir, { recursive: true, force: true });
  }
  await mkdir(dir, { recursive: true });
  write(`superduper demo: PostgreSQL embedded in this process (PGlite + pgvector), its data in ${dir}\n`);

  const db = await connect(`pglite:${dir}`, { logger: createLogger(options.logLevel) });
  try {
    const installed = await db.install();
    write(`SQL layer: ${installed.applied.length ? `installed (migrations ${installed.applied.join(', ')})` : 'already installed'}\n`);
    const worker = await db.start();
    // Ctrl-C during the demo closes the database between two statements (and
    // frees its folder) instead of leaving it mid-write. The sidecar is not
    // waited for: what it had not written is computed again by the next run.
    const interrupted = () => {
      write('\ninterrupted: closing the database\n');
      // Pending promises do not keep a process alive: this does, until closed.
      setInterval(() => {}, 1000);
      void db.backend
        .close()
        .catch((error: unknown) => write(`could not close the database: ${(error as Error).message}\n`))
        .finally(() => process.exit(130));
    };
    process.once('SIGINT', interrupted);
    try {
      const report = await runDemo(db, write);
      process.removeListener('SIGINT', interrupted);
      const seconds = ((performance.now() - started) / 1000).toFixed(1);
      write(
        `\nDone in ${seconds} s: ${report.passages} passages, ${report.computed} embeddings computed in this run. ` +
          `Run it again and it only searches; --reset starts over.\n`,
      );
      if (options.serve) {
        await serveUntilStopped(db, { ...options, write });
      } else {
        write(
          `Next: "npx superduper demo --serve" keeps it running for psql, where you can try\n` +
            `  SELECT * FROM superduper.like('${DEMO_INDEX}', 'some text', 5);\n` +
            `  INSERT INTO ${DEMO_TABLE} VALUES (10000, 'mine', 'my note', 'a passage of my own');  -- its row in superduper.out_${DEMO_LISTENER} appears within a second\n`,
        );
      }
    } finally {
      await worker.stop();
    }
  } finally {
    await db.close();
  }
}
