import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

import { MemoryStorage, TocsinClient } from "../src/index.js";
import { emptyHistory, FakeSocket, frame, welcome } from "./fakes.js";

/**
 * Web Locks as the browser grants them: one holder per name, the others queued in
 * order, released when the holder's callback settles. (Chromium's own is exercised
 * by tests/src/web_sdk.rs; Node 20 has BroadcastChannel but no navigator.locks.)
 */
function fakeLocks() {
  const waiting: Array<() => void> = [];
  let held = false;
  const next = () => waiting.shift()?.();
  return {
    request(_name: string, options: { signal?: AbortSignal }, callback: () => Promise<void>) {
      return new Promise<void>((resolve, reject) => {
        const run = () => {
          held = true;
          callback().then(resolve, reject).finally(() => {
            held = false;
            next();
          });
        };
        options.signal?.addEventListener("abort", () => {
          const index = waiting.indexOf(run);
          if (index >= 0) waiting.splice(index, 1);
          reject(new Error("aborted"));
        });
        if (held) waiting.push(run);
        else run();
      });
    },
  };
}

const USER_STREAM = "user:u1";

function tab(storage: MemoryStorage) {
  return new TocsinClient({
    url: "https://gw.test",
    getToken: () => "token",
    storage,
    WebSocket: FakeSocket as unknown as typeof WebSocket,
    fetch: emptyHistory,
    watchPage: false,
  }).start();
}

beforeEach(() => {
  FakeSocket.all = [];
  vi.stubGlobal("navigator", { locks: fakeLocks() });
});
afterEach(() => {
  vi.unstubAllGlobals();
});

describe("one connection per browser", () => {
  it("the first tab holds the socket; the second mirrors it and sends its actions through it; closing the first hands over", async () => {
    // The origin's IndexedDB, shared by the tabs.
    const storage = new MemoryStorage();
    const a = tab(storage);
    const b = tab(storage);
    expect(a.role).toBe("leader");
    expect(b.role).toBe("follower");
    await vi.waitFor(() => expect(FakeSocket.all).toHaveLength(1));
    const socket = FakeSocket.last();
    socket.open();
    socket.push(welcome([{ stream: USER_STREAM }]));
    socket.push({ type: "caught_up", positions: {} });
    socket.push(frame(USER_STREAM, 1, "n1"));
    socket.push(frame(USER_STREAM, 2, "n2"));
    await vi.waitFor(() => expect(b.notifications().map((i) => i.notification.id)).toEqual(["n2", "n1"]));
    expect(b.state.status).toBe("connected");

    await b.markRead(["n1"]);
    await vi.waitFor(() => expect(socket.frames("mark_read")).toHaveLength(1));
    expect(a.get("n1")!.read).toBe(true);

    a.dispose();
    await vi.waitFor(() => expect(b.role).toBe("leader"));
    await vi.waitFor(() => expect(FakeSocket.all).toHaveLength(2));
    const next = FakeSocket.last();
    next.open();
    // It resumes from what the first tab stored: nothing replayed twice, nothing skipped.
    expect(next.sent[1].positions).toEqual({ [USER_STREAM]: { epoch: "e1", offset: 2 } });
    expect(FakeSocket.all).toHaveLength(2);
    b.dispose();
  });

  it("a call the old leader never answered is sent again with the same id", async () => {
    const storage = new MemoryStorage();
    const a = tab(storage);
    const b = tab(storage);
    await vi.waitFor(() => expect(FakeSocket.all).toHaveLength(1));
    await b.ready();
    // The leader goes away before the call reaches it: as if its tab closed mid-call.
    a.dispose();
    const id = await b.respond("prop-1", "accept");
    expect(b.role).toBe("leader");
    await vi.waitFor(() => expect(FakeSocket.all).toHaveLength(2));
    const socket = FakeSocket.last();
    socket.open();
    socket.push(welcome([{ stream: USER_STREAM }]));
    socket.push({ type: "caught_up", positions: {} });
    await vi.waitFor(() => expect(socket.frames("proposal_respond").map((f) => f.id)).toEqual([id]));
    b.dispose();
  });
});
