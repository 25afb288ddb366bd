import { resolve } from 'node:path';
import { openDatabase } from '../context.js';
import { serveUntilStopped, type EndpointOptions } from '../serve-embedded.js';

export interface ServeOptions extends EndpointOptions {
  logLevel: string;
}

/** Serves an embedded database folder (the demo's, or one of your own) to psql, with a sidecar. */
export async function serveCommand(dir: string, options: ServeOptions): Promise<void> {
  const write = (text: string) => process.stdout.write(text);
  const db = await openDatabase(`pglite:${resolve(dir)}`, { requireInstalled: false, logLevel: options.logLevel });
  try {
    await db.install();
    const worker = await db.start();
    try {
      await serveUntilStopped(db, { ...options, write });
    } finally {
      await worker.stop();
    }
  } finally {
    await db.close();
  }
}
