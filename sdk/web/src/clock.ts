/**
 * The one place the SDK takes time and randomness from. Timers, backoff, heartbeat,
 * token renewal and typing expiry all go through a {@link Clock}, so tests drive them
 * with fake timers and a fixed random source instead of sleeping.
 */

/** A timer handle, as returned by {@link Clock.setTimeout}. */
export type Timer = ReturnType<typeof globalThis.setTimeout>;

/** Time, timers and randomness. */
export interface Clock {
  /** Milliseconds since 1970 (wall clock). */
  now(): number;
  /** Calls `fn` once after `ms` milliseconds. */
  setTimeout(fn: () => void, ms: number): Timer;
  /** Cancels a timer; unknown or spent handles are ignored. */
  clearTimeout(timer: Timer | undefined): void;
  /** A number in [0, 1). */
  random(): number;
}

/**
 * The browser's own clock. Each call reads the global at call time, so Vitest's
 * fake timers (installed after import) replace it too.
 */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (timer) => {
    if (timer !== undefined) globalThis.clearTimeout(timer);
  },
  random: () => Math.random(),
};
