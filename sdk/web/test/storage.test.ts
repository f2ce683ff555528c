import "fake-indexeddb/auto";
import { describe, expect, it } from "vitest";

import { IndexedDbStorage, MemoryStorage, type TocsinStorage } from "../src/index.js";
import { notification } from "./fakes.js";

// The same contract for both stores; the real IndexedDB runs in Chromium (tests/src/web_sdk.rs).
const stores: Array<[string, () => TocsinStorage]> = [
  ["memory", () => new MemoryStorage()],
  ["indexeddb", () => new IndexedDbStorage(`test-${Math.random()}`)],
];

describe.each(stores)("%s storage", (_, make) => {
  it("reads back what was committed, and deletes what was removed", async () => {
    const store = make();
    const item = (id: string, offset: number) => ({ stream: "user:u1", epoch: "e1", offset, read: false, notification: notification(id) as never });
    await store.commit({ put: [item("a", 1), item("b", 2)], positions: { "user:u1": { epoch: "e1", offset: 2 } }, meta: { user: "u1" } });
    await store.commit({ remove: ["a"], outboxPut: [{ seq: 2, frame: { type: "mark_read", id: "x2", notification_ids: ["b"] }, queuedAt: 1 }, { seq: 1, frame: { type: "mark_read", id: "x1", notification_ids: ["a"] }, queuedAt: 1 }] });
    const snapshot = await store.load();
    expect(snapshot.items.map((i) => i.notification.id)).toEqual(["b"]);
    expect(snapshot.positions).toEqual({ "user:u1": { epoch: "e1", offset: 2 } });
    expect(snapshot.outbox.map((e) => e.seq)).toEqual([1, 2]);
    expect(snapshot.meta).toEqual({ user: "u1" });
    await store.commit({ outboxRemove: [1], dropPositions: ["user:u1"], meta: { user: undefined } });
    const after = await store.load();
    expect(after.outbox.map((e) => e.frame.id)).toEqual(["x2"]);
    expect(after.positions).toEqual({});
    expect(after.meta).toEqual({});
    await store.clear();
    expect((await store.load()).items).toEqual([]);
  });

  it("keeps its own copy: later changes to the caller's objects do not reach it", async () => {
    const store = make();
    const position = { epoch: "e1", offset: 1 };
    await store.commit({ positions: { s: position } });
    position.offset = 99;
    expect((await store.load()).positions.s!.offset).toBe(1);
  });
});

describe("indexeddb storage", () => {
  it("is shared by two instances on the same database, as two tabs share it", async () => {
    const name = `shared-${Math.random()}`;
    await new IndexedDbStorage(name).commit({ positions: { all: { epoch: "e", offset: 3 } } });
    expect((await new IndexedDbStorage(name).load()).positions.all!.offset).toBe(3);
  });
});
