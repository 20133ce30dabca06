/**
 * A bounded single-producer, single-consumer async queue: `push` waits while
 * the queue is full (backpressure), `shift` waits while it is empty. `close`
 * ends the stream for the consumer; `fail` wakes both sides with an error.
 */
export class BoundedQueue<T> {
  readonly #capacity: number;
  readonly #items: T[] = [];
  #closed = false;
  #error: unknown = undefined;
  #wakeProducer: (() => void) | null = null;
  #wakeConsumer: (() => void) | null = null;

  constructor(capacity: number) {
    this.#capacity = capacity;
  }

  /** Items waiting. */
  get size(): number {
    return this.#items.length;
  }

  /** Adds an item, waiting while the queue is full. */
  async push(item: T): Promise<void> {
    while (this.#items.length >= this.#capacity && this.#error === undefined) {
      await new Promise<void>((r) => (this.#wakeProducer = r));
    }
    if (this.#error !== undefined) throw this.#error;
    this.#items.push(item);
    this.#wake("consumer");
  }

  /** Takes the next item, or `undefined` once the queue is closed and drained. */
  async shift(): Promise<T | undefined> {
    while (
      this.#items.length === 0 && !this.#closed && this.#error === undefined
    ) {
      await new Promise<void>((r) => (this.#wakeConsumer = r));
    }
    if (this.#error !== undefined) throw this.#error;
    const item = this.#items.shift();
    this.#wake("producer");
    return item;
  }

  /** No more items will come. */
  close(): void {
    this.#closed = true;
    this.#wake("consumer");
  }

  /** Fails both sides with `error`. */
  fail(error: unknown): void {
    if (this.#error === undefined) {
      this.#error = error ?? new Error("Queue failed");
    }
    this.#wake("consumer");
    this.#wake("producer");
  }

  #wake(side: "consumer" | "producer"): void {
    const f = side === "consumer" ? this.#wakeConsumer : this.#wakeProducer;
    if (side === "consumer") this.#wakeConsumer = null;
    else this.#wakeProducer = null;
    f?.();
  }
}
