import type { Server } from 'node:http';
import { SuperduperError } from '../../errors.js';
import { openDatabaseWhenReachable, resolveUri } from '../context.js';
import type { Sidecar } from '../../sidecar/sidecar.js';
import { SidecarMetrics } from '../../sidecar/metrics.js';
import { serveHealth } from '../health-server.js';
import { serveMetrics } from '../metrics-server.js';
import { serveUi } from '../../ui/server.js';

export interface StartOptions {
  reconcileMs: number;
  logLevel: string;
  healthPort?: number;
  healthHost: string;
  metrics?: { host: string; port: number };
  ui?: { host: string; port: number };
}

/**
 * Runs a sidecar until SIGTERM or SIGINT, then stops gracefully. A database that
 * is down, restarting or failing over is waited for; only an error no retry can
 * fix ends it early (exit status 78, see main.ts).
 */
export async function startCommand(uri: string | undefined, options: StartOptions): Promise<void> {
  const db = await openDatabaseWhenReachable(uri, { logLevel: options.logLevel });
  let health: Server | undefined;
  let metricsServer: Server | undefined;
  let uiServer: Server | undefined;
  // The gauges read superduper.status at each scrape, and the sidecar's own state.
  let sidecar: Sidecar | undefined;
  const metrics = options.metrics
    ? new SidecarMetrics({
        status: () => db.status({ countDone: false }),
        sidecar: () => sidecar?.status() ?? { state: 'starting', outages: 0 },
      })
    : undefined;
  try {
    const worker = await db.start({ reconcileMs: options.reconcileMs, observer: metrics });
    sidecar = worker;
    if (metrics && options.metrics) {
      const where = options.metrics;
      metricsServer = await serveMetrics(metrics.registry, where).catch((error: unknown) => {
        throw new SuperduperError(`cannot serve metrics on ${where.host}:${where.port}: ${(error as Error).message}`, { hint: 'Pass another --metrics host:port.' });
      });
      const address = metricsServer.address();
      db.logger.info({ host: where.host, port: typeof address === 'object' && address ? address.port : where.port }, 'metrics: /metrics');
    }
    if (options.ui) {
      const where = options.ui;
      if (/^mongodb(\+srv)?:/.test(resolveUri(uri))) {
        throw new SuperduperError('the status page reads PostgreSQL\'s views; it has no MongoDB form yet', { hint: 'Start the sidecar without --ui.' });
      }
      uiServer = await serveUi(db.db, where).catch((error: unknown) => {
        throw new SuperduperError(`cannot serve the status page on ${where.host}:${where.port}: ${(error as Error).message}`, { hint: 'Pass another --ui host:port.' });
      });
      const address = uiServer.address();
      db.logger.info({ host: where.host, port: typeof address === 'object' && address ? address.port : where.port }, 'status page: /');
    }
    if (options.healthPort !== undefined) {
      health = await serveHealth(() => worker.status(), { host: options.healthHost, port: options.healthPort }).catch((error: unknown) => {
        throw new SuperduperError(`cannot serve the health endpoint on ${options.healthHost}:${options.healthPort}: ${(error as Error).message}`, {
          hint: 'Pass another --health-port.',
        });
      });
      const address = health.address();
      const port = typeof address === 'object' && address ? address.port : options.healthPort;
      db.logger.info({ port, host: options.healthHost }, 'health endpoint: /healthz, /readyz');
    }
    const signalled = new Promise<void>((resolve) => {
      const stop = (signal: string) => {
        db.logger.info({ signal }, 'stopping');
        resolve();
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
    });
    await Promise.race([signalled, worker.done]);
    await worker.stop();
    await worker.done;
  } finally {
    health?.close();
    metricsServer?.close();
    uiServer?.close();
    metrics?.close();
    await db.close();
  }
}
