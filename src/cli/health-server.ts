import { createServer, type Server } from 'node:http';
import type { SidecarStatus } from '../sidecar/sidecar.js';

/**
 * The health endpoint of `superduper start --health-port`, for systemd
 * watchdogs, Kubernetes probes and load balancers:
 *   GET /healthz  200 while the sidecar runs, reconnecting included (restarting
 *                 it would not bring the database back); 503 once it failed.
 *   GET /readyz   200 when it is connected and working or idle; 503 while it
 *                 starts, reconnects, or waits for the layer to be upgraded.
 * Both answer with the sidecar's status as JSON.
 */
export async function serveHealth(status: () => SidecarStatus, options: { host: string; port: number }): Promise<Server> {
  const server = createServer((request, response) => {
    const current = status();
    const path = (request.url ?? '/').split('?')[0];
    let ok: boolean;
    if (path === '/healthz') ok = current.state !== 'failed' && current.state !== 'stopped';
    else if (path === '/readyz') ok = current.state === 'working' || current.state === 'idle';
    else {
      response.writeHead(404, { 'content-type': 'text/plain' }).end('try /healthz or /readyz\n');
      return;
    }
    response.writeHead(ok ? 200 : 503, { 'content-type': 'application/json' }).end(`${JSON.stringify(current)}\n`);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  return server;
}
