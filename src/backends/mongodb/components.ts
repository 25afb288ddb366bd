import { describeError, errorFields, SuperduperError } from '../../errors.js';
import type { Registry } from '../backend.js';
import type { ApplyResult } from '../types.js';
import { collection, type MongoContext } from './context.js';
import type { ComponentDoc } from './documents.js';
import { COLLECTIONS } from './names.js';

const LEASE_MS = 60_000;
/** How often pending declarations are looked for without a wake-up (the capture's stream brings one at once). */
const POLL_MS = 2_000;
/** Fields the applier writes back; the rest of the document is the spec. */
const BOOKKEEPING = new Set(['_id', 'status', 'owner', 'lease_until', 'result', 'error', 'hint', 'applied_at']);

/**
 * Components declared from mongosh: a spec inserted into
 * superduper.components is applied by a sidecar, which writes the outcome into
 * the same document (status 'applied' with the result, or 'failed' with the
 * error and its hint). {type: 'remove', name, cascade?, keep_outputs?} removes.
 */
export class ComponentApplier {
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #again = false;
  #stopped = false;

  constructor(
    private readonly context: MongoContext,
    private readonly registry: Registry & { applyOne(raw: unknown): Promise<ApplyResult[]> },
    private readonly ownerId: string,
  ) {}

  start(): void {
    this.#timer = setInterval(() => this.wake(), POLL_MS);
    this.#timer.unref();
    this.wake();
  }

  wake(): void {
    if (this.#stopped) return;
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.#running = this.#drain()
      .catch((error: unknown) => this.context.logger.warn(errorFields(error), 'could not apply components declared in superduper.components'))
      .finally(() => {
        this.#running = undefined;
        if (this.#again) {
          this.#again = false;
          this.wake();
        }
      });
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#timer);
    await this.#running;
  }

  async #drain(): Promise<void> {
    const components = collection<ComponentDoc>(this.context, COLLECTIONS.components);
    while (!this.#stopped) {
      const now = new Date();
      const doc = await components.findOneAndUpdate(
        { $or: [{ status: { $exists: false } }, { status: 'pending' }, { status: 'applying', lease_until: { $lt: now } }] },
        { $set: { status: 'applying', owner: this.ownerId, lease_until: new Date(now.getTime() + LEASE_MS) } },
        { sort: { _id: 1 }, returnDocument: 'after' },
      );
      if (!doc) return;
      const spec = Object.fromEntries(Object.entries(doc).filter(([field]) => !BOOKKEEPING.has(field)));
      try {
        const result = spec.type === 'remove' ? await this.#remove(spec) : await this.registry.applyOne(spec);
        await components.updateOne(
          { _id: doc._id, owner: this.ownerId },
          { $set: { status: 'applied', result, applied_at: new Date() }, $unset: { error: '', hint: '', owner: '', lease_until: '' } },
        );
        this.context.logger.info({ component: spec.name, result }, 'applied a component declared in superduper.components');
      } catch (error) {
        const hint = error instanceof SuperduperError ? error.hint : undefined;
        await components.updateOne(
          { _id: doc._id, owner: this.ownerId },
          { $set: { status: 'failed', error: describeError(error), ...(hint ? { hint } : {}), applied_at: new Date() }, $unset: { owner: '', lease_until: '' } },
        );
      }
    }
  }

  #remove(spec: Record<string, unknown>): Promise<ApplyResult[]> {
    if (typeof spec.name !== 'string') throw new SuperduperError('superduper.remove: {type: "remove"} needs the "name" of what to remove');
    return this.registry.remove(spec.name, { cascade: spec.cascade === true, keepOutputs: spec.keep_outputs === true });
  }
}
