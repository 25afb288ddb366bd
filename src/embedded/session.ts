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
  readonly #waiting: Array<{ owner: symbol; grant: () => void }> = [];

  /** Whether the caller's async context holds the session. */
  holds(): boolean {
    const owner = this.#context.getStore();
    return owner !== undefined && owner === this.#owner;
  }

  /** Takes the session for owner (no-op if it holds it already). */
  acquire(owner: symbol): Promise<void> {
    if (this.#owner === owner) return Promise.resolve();
    if (this.#owner === null) {
      this.#owner = owner;
      return Promise.resolve();
    }
    return new Promise((grant) => this.#waiting.push({ owner, grant }));
  }

  /** Gives the session to the next waiter (only its owner can). */
  release(owner: symbol): void {
    if (this.#owner !== owner) return;
    const next = this.#waiting.shift();
    this.#owner = next?.owner ?? null;
    next?.grant();
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
