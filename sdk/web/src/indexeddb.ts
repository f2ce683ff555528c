/**
 * The browser's durable store: one IndexedDB database per gateway and user scope,
 * four object stores (`items` by notification id, `positions` by stream, `outbox` by
 * seq, `meta` by key), and one read-write transaction per {@link Commit}, so a
 * position and the notifications it covers are written together or not at all.
 *
 * IndexedDB is shared by every tab of the origin, which is what lets a follower tab
 * take over from a closed leader with nothing lost (`tabs.ts`).
 */

import type { Commit, Snapshot, TocsinStorage } from "./storage.js";
import type { InboxItem, OutboxEntry } from "./types.js";
import type { Position } from "./protocol/index.js";

const VERSION = 1;
const STORES = ["items", "positions", "outbox", "meta"] as const;

/** A store in IndexedDB under the database name `name`. */
export class IndexedDbStorage implements TocsinStorage {
  #db: Promise<IDBDatabase> | undefined;

  constructor(
    readonly name: string,
    private readonly factory: IDBFactory = globalThis.indexedDB,
  ) {}

  #open(): Promise<IDBDatabase> {
    this.#db ??= new Promise((resolve, reject) => {
      const request = this.factory.open(this.name, VERSION);
      request.onupgradeneeded = () => {
        const db = request.result;
        if (!db.objectStoreNames.contains("items")) db.createObjectStore("items", { keyPath: "notification.id" });
        if (!db.objectStoreNames.contains("positions")) db.createObjectStore("positions");
        if (!db.objectStoreNames.contains("outbox")) db.createObjectStore("outbox", { keyPath: "seq" });
        if (!db.objectStoreNames.contains("meta")) db.createObjectStore("meta");
      };
      request.onsuccess = () => {
        const db = request.result;
        // Another tab upgrading the schema: let it, and reopen on next use.
        db.onversionchange = () => {
          db.close();
          this.#db = undefined;
        };
        resolve(db);
      };
      request.onerror = () => reject(storageError("open", request.error));
      request.onblocked = () => reject(new Error(`IndexedDB '${this.name}' is blocked by another tab holding an older version open; close it and reload`));
    });
    return this.#db;
  }

  async load(): Promise<Snapshot> {
    const db = await this.#open();
    const tx = db.transaction(STORES, "readonly");
    const [items, outbox] = await Promise.all([
      all<InboxItem>(tx.objectStore("items").getAll()),
      all<OutboxEntry>(tx.objectStore("outbox").getAll()),
    ]);
    const positions = await entries<Position>(tx.objectStore("positions"));
    const meta = await entries<unknown>(tx.objectStore("meta"));
    outbox.sort((a, b) => a.seq - b.seq);
    return { items, positions, outbox, meta };
  }

  async commit(change: Commit): Promise<void> {
    const db = await this.#open();
    const tx = db.transaction(STORES, "readwrite");
    const items = tx.objectStore("items");
    const positions = tx.objectStore("positions");
    const outbox = tx.objectStore("outbox");
    const meta = tx.objectStore("meta");
    for (const id of change.remove ?? []) items.delete(id);
    for (const item of change.put ?? []) items.put(item);
    for (const stream of change.dropPositions ?? []) positions.delete(stream);
    for (const [stream, position] of Object.entries(change.positions ?? {})) positions.put(position, stream);
    for (const seq of change.outboxRemove ?? []) outbox.delete(seq);
    for (const entry of change.outboxPut ?? []) outbox.put(entry);
    for (const [key, value] of Object.entries(change.meta ?? {})) {
      if (value === undefined) meta.delete(key);
      else meta.put(value, key);
    }
    await done(tx, "commit");
  }

  async clear(): Promise<void> {
    const db = await this.#open();
    const tx = db.transaction(STORES, "readwrite");
    for (const store of STORES) tx.objectStore(store).clear();
    await done(tx, "clear");
  }

  /** Closes the connection (tests delete the database afterwards). */
  async close(): Promise<void> {
    if (this.#db) (await this.#db).close();
    this.#db = undefined;
  }
}

function all<T>(request: IDBRequest<unknown[]>): Promise<T[]> {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result as T[]);
    request.onerror = () => reject(storageError("read", request.error));
  });
}

/** Every key/value pair of a store with out-of-line keys. */
function entries<T>(store: IDBObjectStore): Promise<Record<string, T>> {
  return new Promise((resolve, reject) => {
    const out: Record<string, T> = {};
    const request = store.openCursor();
    request.onsuccess = () => {
      const cursor = request.result;
      if (!cursor) return resolve(out);
      out[String(cursor.key)] = cursor.value as T;
      cursor.continue();
    };
    request.onerror = () => reject(storageError("read", request.error));
  });
}

function done(tx: IDBTransaction, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onabort = () => reject(storageError(what, tx.error));
    tx.onerror = () => reject(storageError(what, tx.error));
  });
}

/** A full disk is the one failure a user can act on: say so. */
function storageError(what: string, error: DOMException | null): Error {
  if (error?.name === "QuotaExceededError") {
    return new Error(`cannot ${what} the notification store: the browser's storage quota is full; free space for this site (site settings) and reload`);
  }
  return new Error(`cannot ${what} the notification store: ${error?.message ?? "unknown IndexedDB error"}`);
}
