/**
 * Reconnection delays: exponential backoff with full jitter (PROTOCOL.md §9), so that
 * a gateway restart does not bring every browser of the firm back in the same second.
 */

/** Defaults from PROTOCOL.md §9: base about 1 s, cap about 60 s. */
export const BACKOFF_BASE_MS = 1_000;
export const BACKOFF_CAP_MS = 60_000;

/** The attempt counter and the delay it gives. */
export class Backoff {
  #attempt = 0;

  constructor(
    private readonly random: () => number,
    private readonly baseMs = BACKOFF_BASE_MS,
    private readonly capMs = BACKOFF_CAP_MS,
  ) {}

  /** The failed attempts since the last reset. */
  get attempt(): number {
    return this.#attempt;
  }

  /** The wait before the next attempt: `random(0, min(cap, base × 2^attempt))`. */
  next(): number {
    // 2^20 s is far past the cap: stop growing the exponent there.
    const ceiling = Math.min(this.capMs, this.baseMs * 2 ** Math.min(this.#attempt, 20));
    this.#attempt += 1;
    return Math.floor(this.random() * ceiling);
  }

  /** Called once a connection has stayed up for a while (not merely opened). */
  reset(): void {
    this.#attempt = 0;
  }
}
