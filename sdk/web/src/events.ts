/**
 * A small typed event emitter: `on(name, listener)` returns the function that removes
 * the listener. A listener that throws is reported to the console and does not stop
 * the others (a host app's bug must not stall delivery).
 */

export type Listener<T> = (value: T) => void;

export class Emitter<Events extends object> {
  readonly #listeners = new Map<keyof Events, Set<Listener<never>>>();

  on<K extends keyof Events>(name: K, listener: Listener<Events[K]>): () => void {
    let set = this.#listeners.get(name);
    if (!set) this.#listeners.set(name, (set = new Set()));
    set.add(listener as Listener<never>);
    return () => set.delete(listener as Listener<never>);
  }

  emit<K extends keyof Events>(name: K, value: Events[K]): void {
    for (const listener of this.#listeners.get(name) ?? []) {
      try {
        (listener as Listener<Events[K]>)(value);
      } catch (err) {
        console.error(`tocsin: a '${String(name)}' listener threw`, err);
      }
    }
  }
}
