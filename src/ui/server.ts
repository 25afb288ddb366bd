import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Queryable } from '../backends/postgres/sql-driver.js';
import { describeError } from '../errors.js';
import { statusPage } from './page.js';
import { failures, overview, retry, search } from './queries.js';

/**
 * `superduper ui`: the status page and the JSON it reads, over HTTP.
 *   GET  /                 the page (page.ts)
 *   GET  /api/overview     listeners, sidecars, vector indexes, applications, lineage
 *   GET  /api/failures     rows failed for good, with their errors
 *   GET  /api/search?index=&q=&k=   superduper.like, each hit with its source row
 *   POST /api/retry        {"listener": ...}: superduper.retry, with the page's token
 * Bound where it is told (127.0.0.1 by default: the database role's rights are
 * anyone's who reaches it). The POST needs the token of this server's page
 * in a header: another site's page can neither read it nor send the header
 * without a preflight, which is refused.
 */
export async function serveUi(db: Queryable, address: { host: string; port: number }): Promise<Server> {
  const token = randomBytes(16).toString('hex');
  const page = statusPage(token);
  const server = createServer((request, response) => {
    handle(db, token, page, request, response).catch((error: unknown) => json(response, 500, { error: describeError(error) }));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(address.port, address.host, () => resolve());
  });
  return server;
}

async function handle(db: Queryable, token: string, page: string, request: IncomingMessage, response: ServerResponse): Promise<void> {
  const url = new URL(request.url ?? '/', 'http://localhost');
  const route = `${request.method} ${url.pathname}`;
  switch (route) {
    case 'GET /':
      response.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', 'x-frame-options': 'DENY' }).end(page);
      return;
    case 'GET /api/overview':
      return json(response, 200, await overview(db));
    case 'GET /api/failures':
      return json(response, 200, await failures(db));
    case 'GET /api/search': {
      const index = url.searchParams.get('index') ?? '';
      const query = url.searchParams.get('q') ?? '';
      if (index === '' || query.trim() === '') return json(response, 400, { error: 'a vector index and a query are needed' });
      try {
        return json(response, 200, await search(db, index, query, Number(url.searchParams.get('k') ?? 10)));
      } catch (error) {
        return json(response, 400, { error: describeError(error) });
      }
    }
    case 'POST /api/retry': {
      const given = Buffer.from(String(request.headers['x-superduper-token'] ?? ''));
      if (given.length !== token.length || !timingSafeEqual(given, Buffer.from(token))) return json(response, 403, { error: 'not this page\'s token' });
      const body = JSON.parse((await readBody(request)) || '{}') as { listener?: unknown };
      if (typeof body.listener !== 'string') return json(response, 400, { error: 'the body must be {"listener": "<name>"}' });
      try {
        return json(response, 200, { queued: await retry(db, body.listener) });
      } catch (error) {
        // Most likely the role's rights: said as the database says it.
        return json(response, 403, { error: describeError(error) });
      }
    }
    default:
      return json(response, 404, { error: `no ${route}` });
  }
}

function json(response: ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(body));
}

async function readBody(request: IncomingMessage): Promise<string> {
  let text = '';
  for await (const chunk of request) {
    text += chunk;
    if (text.length > 10_000) throw new Error('request body too large');
  }
  return text;
}
