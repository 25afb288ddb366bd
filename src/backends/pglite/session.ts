import { AsyncLocalStorage } from 'node:async_hooks';

/**
 * PGlite is one PostgreSQL backend: one session, shared by everything in the
 * process (the sidecar, the TypeScript API) and by every client of the wire
 * server. This lock gives the session to one holder at a time, in arrival order,
 * and lets a holder keep it across several steps: a wire client inside a
 * transaction block keeps it until the block ends, so nobody else's statement
 * runs inside someone's transaction.
 *
 * Within the async context of a holder (AsyncLocalStorage), taking the session
 * again is free, so code that queries inside its own transaction callback
 * neither deadlocks nor escapes the transaction.
 */
export class SharedSession {
  readonly #context = new AsyncLocalStorage<symbol>();
  #owner: symbol | null = null;
  #since = 0;
  readonly #waiting: Array<{ owner: symbol; grant: () => void }> = [];
  readonly #labels = new Map<symbol, () => string>();

  /** Whether the caller's async context holds the session. */
  holds(): boolean {
    const owner = this.#context.getStore();
    return owner !== undefined && owner === this.#owner;
  }

  /**
   * Takes the session for owner (no-op if it holds it already). An abort of
   * signal while it waits (a cancel request, a wait that lasted too long) takes
   * it out of the line and rejects with the signal's reason.
   */
  acquire(owner: symbol, signal?: AbortSignal): Promise<void> {
    if (this.tryAcquire(owner)) return Promise.resolve();
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise((grant, reject) => {
      const waiter = { owner, grant: () => {
        signal?.removeEventListener('abort', abort);
        grant();
      } };
      const abort = () => {
        const index = this.#waiting.indexOf(waiter);
        if (index < 0) return; // granted meanwhile
        this.#waiting.splice(index, 1);
        reject(signal!.reason);
      };
      signal?.addEventListener('abort', abort, { once: true });
      this.#waiting.push(waiter);
    });
  }

  /** Takes the session for owner if it is free (or owner's already): whether it did. */
  tryAcquire(owner: symbol): boolean {
    if (this.#owner === owner) return true;
    if (this.#owner !== null) return false;
    this.#owner = owner;
    this.#since = Date.now();
    return true;
  }

  /** Gives the session to the next waiter (only its owner can). */
  release(owner: symbol): void {
    if (this.#owner !== owner) return;
    const next = this.#waiting.shift();
    this.#owner = next?.owner ?? null;
    this.#since = Date.now();
    next?.grant();
  }

  /** Names an owner for messages about who holds the session (a wire client: its address and application). */
  label(owner: symbol, describe: (() => string) | undefined): void {
    if (describe) this.#labels.set(owner, describe);
    else this.#labels.delete(owner);
  }

  /** Who holds the session and for how long (ms), for a message to those waiting. */
  holder(): { who: string; forMs: number } | undefined {
    if (this.#owner === null) return undefined;
    const describe = this.#labels.get(this.#owner);
    return { who: describe ? describe() : 'the process hosting the database (its sidecar or application)', forMs: Date.now() - this.#since };
  }

  /** Runs fn holding the session (taken and given back unless the caller holds it already). */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.holds()) return fn();
    const owner = Symbol('in-process');
    await this.acquire(owner);
    try {
      return await this.#context.run(owner, fn);
    } finally {
      this.release(owner);
    }
  }

  /** Runs fn in owner's context (owner holds the session): its queries run as part of owner's turn. */
  runAs<T>(owner: symbol, fn: () => Promise<T>): Promise<T> {
    if (this.#owner !== owner) return Promise.reject(new Error('the embedded session is not held by this owner'));
    return this.#context.run(owner, fn);
  }

  /** Takes the session until the returned function is called. */
  async hold(): Promise<{ run<T>(fn: () => Promise<T>): Promise<T>; release(): void }> {
    if (this.holds()) return { run: (fn) => fn(), release: () => {} };
    const owner = Symbol('held');
    await this.acquire(owner);
    return {
      run: (fn) => this.#context.run(owner, fn),
      release: () => this.release(owner),
    };
  }

  /** Waiters, for tests and status. */
  get waiting(): number {
    return this.#waiting.length;
  }
}
