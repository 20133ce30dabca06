/**
 * The `dedup` codec's content store: a FIFO ring of fixed-size chunk slots
 * that the sender and the receiver fill with the same chunks in the same
 * order. A chunk is named by its age: 1 for the chunk inserted last, 2 for
 * the one before, up to the number of chunks still held. Slot of the chunk
 * inserted as number `seq` (0-based) is `seq mod capacity`, so inserting
 * into a full ring evicts the oldest chunk.
 *
 * The ring grows by doubling up to `capacity` slots, so a short migration
 * does not pay for the whole configured store; it never exceeds
 * `capacity × chunkWords × 4` bytes.
 *
 * @module
 */

/** Slots allocated by the first insertion. */
const FIRST_SLOTS = 64;

/** A FIFO ring of chunks addressed by age. */
export class ChunkStore {
  /** Most chunks held at once. */
  readonly capacity: number;
  /** Chunk size in 32-bit words. */
  readonly chunkWords: number;
  #ring = new Uint32Array(0);
  #slots = 0;
  #count = 0;

  /**
   * @param capacity Most chunks held at once (at least 1).
   * @param chunkWords Chunk size in 32-bit words.
   */
  constructor(capacity: number, chunkWords: number) {
    this.capacity = capacity;
    this.chunkWords = chunkWords;
  }

  /** Chunks inserted since creation (including evicted ones). */
  get count(): number {
    return this.#count;
  }

  /** Chunks held now: `min(count, capacity)`. */
  get held(): number {
    return Math.min(this.#count, this.capacity);
  }

  /** Bytes allocated for chunk data now; never more than `capacity × chunk bytes`. */
  get bytes(): number {
    return this.#ring.byteLength;
  }

  /** The ring's words; chunk data lives at the offsets {@link offsetOf} returns. */
  get ring(): Uint32Array {
    return this.#ring;
  }

  /**
   * Word offset in {@link ring} of the chunk inserted `age` insertions ago,
   * or -1 when no chunk of that age is held (age below 1, above
   * {@link held}, or not an integer).
   */
  offsetOf(age: number): number {
    if (!Number.isInteger(age) || age < 1 || age > this.held) return -1;
    return ((this.#count - age) % this.capacity) * this.chunkWords;
  }

  /** A copy of the chunk inserted `age` insertions ago, if still held. */
  copy(age: number): Uint8Array | undefined {
    const off = this.offsetOf(age);
    if (off < 0) return undefined;
    return new Uint8Array(this.#ring.slice(off, off + this.chunkWords).buffer);
  }

  /** Copies `chunkWords` words of `src` from `start` into the next slot, evicting the oldest when full. */
  insert(src: Uint32Array, start: number): void {
    const slot = this.#count % this.capacity;
    if (slot >= this.#slots) this.#grow();
    const w = this.chunkWords;
    this.#ring.set(src.subarray(start, start + w), slot * w); // memcpy
    this.#count++;
  }

  #grow(): void {
    const slots = Math.min(
      this.capacity,
      Math.max(FIRST_SLOTS, this.#slots * 2),
    );
    const ring = new Uint32Array(slots * this.chunkWords);
    ring.set(this.#ring);
    this.#ring = ring;
    this.#slots = slots;
  }
}
