/**
 * Command dispatch and the fields every reply carries: ok, and, as a replica
 * set member, operationTime and $clusterTime.
 */
import { Binary, Long } from 'bson';
import { CommandError } from '../errors.js';
import type { CommandContext, Handler } from '../state.js';
import type { Doc } from '../storage.js';
import { crudCommands } from './crud.js';
import { ddlCommands } from './ddl.js';
import { handshakeCommands } from './handshake.js';
import { readCommands } from './read.js';

const COMMANDS: Record<string, Handler> = { ...handshakeCommands, ...crudCommands, ...readCommands, ...ddlCommands };

const RETRYABLE = new Set(['insert', 'update', 'delete', 'findAndModify', 'findandmodify']);
const ZERO_HASH = new Binary(Buffer.alloc(20), 0);

export function errorReply(e: unknown): Doc {
  if (e instanceof CommandError) {
    const reply: Doc = { ok: 0, errmsg: e.message, code: e.code, codeName: e.codeName, ...e.extra };
    if (e.codeName === 'ChangeStreamHistoryLost') reply.errorLabels = ['NonResumableChangeStreamError'];
    return reply;
  }
  // A bug of the emulator's own: surfaced as a server error the test will see.
  return { ok: 0, errmsg: `emulator internal error: ${(e as Error)?.stack ?? String(e)}`, code: 1, codeName: 'InternalError' };
}

function sessionKey(cmd: Doc): string | null {
  const id = (cmd.lsid as { id?: unknown } | undefined)?.id;
  if (!(id instanceof Binary) || cmd.txnNumber === undefined) return null;
  return Buffer.from(id.buffer.subarray(0, id.position)).toString('hex');
}

async function execute(cmd: Doc, ctx: CommandContext): Promise<Doc> {
  const name = Object.keys(cmd)[0] ?? '';
  if (cmd.autocommit === false || cmd.startTransaction === true) {
    return errorReply(new CommandError('IllegalOperation', 'Transactions are not supported by the superduper test emulator'));
  }
  const handler = Object.prototype.hasOwnProperty.call(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!handler) {
    if (process.env.EMULATOR_DEBUG) console.error(`[mongodb-emulator] unknown command ${name}`, cmd);
    return errorReply(new CommandError('CommandNotFound', `no such command: '${name}'`));
  }
  const key = RETRYABLE.has(name) ? sessionKey(cmd) : null;
  const txn = key ? String(cmd.txnNumber) : '';
  if (key) {
    const prev = ctx.state.retried.get(key);
    if (prev && prev.txnNumber === txn) return prev.reply;
  }
  try {
    const reply = await handler(cmd, ctx);
    if (key) ctx.state.retried.set(key, { txnNumber: txn, reply });
    return reply;
  } catch (e) {
    if (process.env.EMULATOR_DEBUG && !(e instanceof CommandError)) console.error('[mongodb-emulator]', e);
    return errorReply(e);
  }
}

export async function runCommand(cmd: Doc, ctx: CommandContext): Promise<Doc> {
  const reply = await execute(cmd, ctx);
  const now = ctx.state.log.now();
  const out: Doc = { ...reply };
  if (out.ok === undefined) out.ok = 1;
  out.operationTime = now;
  out.$clusterTime = { clusterTime: now, signature: { hash: ZERO_HASH, keyId: Long.ZERO } };
  return out;
}
