/**
 * Pieces of text as they are produced, for any number of readers: each
 * iteration starts from the first piece (a reader that comes late misses
 * nothing) and waits for the next ones; `text` is the whole once it ends.
 * Pieces are kept: an LLM's answer is small, and the whole is wanted anyway.
 */
export class TextStream implements AsyncIterable<string> {
  readonly text: Promise<string>;
  readonly #pieces: string[] = [];
  #ended = false;
  #error: Error | undefined;
  #waiting: Array<() => void> = [];
  #settle!: { resolve: (text: string) => void; reject: (error: Error) => void };

  constructor() {
    this.text = new Promise<string>((resolve, reject) => {
      this.#settle = { resolve, reject };
    });
    // A caller who only iterates must not get an unhandled rejection from the
    // promise it never looked at; awaiting `text` still rejects.
    this.text.catch(() => {});
  }

  get pieces(): number {
    return this.#pieces.length;
  }

  /** The text so far. */
  get sofar(): string {
    return this.#pieces.join('');
  }

  push(piece: string): void {
    if (this.#ended || piece === '') return;
    this.#pieces.push(piece);
    this.#wake();
  }

  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#settle.resolve(this.#pieces.join(''));
    this.#wake();
  }

  fail(error: Error): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#error = error;
    this.#settle.reject(error);
    this.#wake();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<string> {
    for (let next = 0; ; ) {
      while (next < this.#pieces.length) yield this.#pieces[next++]!;
      if (this.#error) throw this.#error;
      if (this.#ended) return;
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
    }
  }

  #wake(): void {
    const waiting = this.#waiting;
    this.#waiting = [];
    for (const resolve of waiting) resolve();
  }
}
