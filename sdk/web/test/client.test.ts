import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

import { TocsinClient, MemoryStorage } from "../src/index.js";
import type { TokenReason } from "../src/index.js";
import { emptyHistory, FakeSocket, flush, frame, historyServer, LIMITS, notification, until, welcome } from "./fakes.js";

const USER_STREAM = "user:u1";

function setup(opts: { storage?: MemoryStorage; fetch?: typeof fetch; random?: number; tokens?: (reason: TokenReason) => string } = {}) {
  const storage = opts.storage ?? new MemoryStorage();
  const reasons: TokenReason[] = [];
  const client = new TocsinClient({
    url: "https://gw.test/",
    getToken: (reason) => {
      reasons.push(reason);
      if (opts.tokens) return opts.tokens(reason);
      return `token-${reasons.length}`;
    },
    storage,
    WebSocket: FakeSocket as unknown as typeof WebSocket,
    fetch: opts.fetch ?? emptyHistory,
    watchPage: false,
    clock: { now: () => Date.now(), setTimeout: (fn, ms) => setTimeout(fn, ms), clearTimeout: (t) => clearTimeout(t), random: () => opts.random ?? 0.5 },
  });
  return { client, storage, reasons };
}

/** Opens the socket the client just created and answers its hello. */
async function connect(streams: Parameters<typeof welcome>[0], replay: object[] = []) {
  await until(() => FakeSocket.all.length > 0 && FakeSocket.last().readyState === 0);
  const socket = FakeSocket.last();
  socket.open();
  socket.push(welcome(streams));
  for (const f of replay) socket.push(f);
  socket.push({ type: "caught_up", positions: {} });
  await flush();
  return socket;
}

beforeEach(() => {
  vi.useFakeTimers({ now: new Date("2026-12-07T09:00:00Z") });
  FakeSocket.all = [];
});
afterEach(() => {
  vi.useRealTimers();
});

describe("handshake and delivery", () => {
  it("sends auth then hello with the stored positions, on the tocsin.v1 subprotocol", async () => {
    const storage = new MemoryStorage();
    await storage.commit({ positions: { [USER_STREAM]: { epoch: "e1", offset: 4 } }, meta: { user: "u1" } });
    const { client } = setup({ storage });
    client.start();
    await until(() => FakeSocket.all.length === 1);
    const socket = FakeSocket.last();
    expect(socket.url).toBe("wss://gw.test/v1/ws");
    expect(socket.protocol).toBe("tocsin.v1");
    socket.open();
    expect(socket.sent[0]).toEqual({ type: "auth", token: "token-1" });
    expect(socket.sent[1]).toMatchObject({ type: "hello", positions: { [USER_STREAM]: { epoch: "e1", offset: 4 } }, features: ["retract"] });
  });

  it("stores a live notification and advances the position with it", async () => {
    const { client, storage } = setup();
    const seen: string[] = [];
    client.on("notifications", ({ items, source }) => seen.push(...items.map((i) => `${source}:${i.notification.id}`)));
    client.start();
    const socket = await connect([{ stream: USER_STREAM, head: 0 }]);
    socket.push(frame(USER_STREAM, 1, "n1"));
    await flush();
    expect(seen).toEqual(["live:n1"]);
    expect(client.unread().total).toBe(1);
    const stored = await storage.load();
    expect(stored.positions[USER_STREAM]).toEqual({ epoch: "e1", offset: 1 });
    expect(stored.items.map((i) => i.notification.id)).toEqual(["n1"]);
    expect(client.state.status).toBe("connected");
  });

  it("drops duplicates by id and by slot", async () => {
    const { client } = setup();
    client.start();
    const socket = await connect([{ stream: USER_STREAM }]);
    socket.push(frame(USER_STREAM, 1, "n1"));
    socket.push(frame(USER_STREAM, 1, "n1"));
    socket.push(frame("tenant:dupont", 1, "n1"));
    await flush();
    expect(client.notifications().map((i) => i.notification.id)).toEqual(["n1"]);
  });

  it("ends the session on a gap instead of skipping, and resumes from what is stored", async () => {
    const { client, storage } = setup();
    client.start();
    const socket = await connect([{ stream: USER_STREAM }]);
    socket.push(frame(USER_STREAM, 1, "n1"));
    socket.push(frame(USER_STREAM, 3, "n3"));
    await flush();
    expect(socket.closedByClient).toBe(1000);
    expect(client.get("n3")).toBeUndefined();
    expect((await storage.load()).positions[USER_STREAM]!.offset).toBe(1);
    expect(client.state.error?.message).toMatch(/offsets 2–2 of user:u1 never arrived/);
    // random 0.5 × 1 s: the first retry comes after 500 ms, with offset 1 in hello.
    await until(() => FakeSocket.all.length === 2, 600);
    FakeSocket.last().open();
    expect(FakeSocket.last().sent[1].positions[USER_STREAM]).toEqual({ epoch: "e1", offset: 1 });
    FakeSocket.last().push(welcome([{ stream: USER_STREAM, head: 1 }]));
    await flush();
    expect(client.state.status).toBe("connected");
    expect(client.state.error).toBeUndefined(); // the gap's explanation is gone once connected
  });

  it("keeps a notification of an unknown kind and advances past it", async () => {
    const { client, storage } = setup();
    client.start();
    const socket = await connect([{ stream: USER_STREAM }]);
    socket.push(frame(USER_STREAM, 1, "n1", { notification: notification("n1", { kind: "court-hearing", data: { room: 4 } }) }));
    socket.push(frame(USER_STREAM, 2, "n2"));
    await flush();
    expect(client.notifications().map((i) => i.notification.kind).sort()).toEqual(["court-hearing", "email-received"]);
    expect((await storage.load()).positions[USER_STREAM]!.offset).toBe(2);
  });

  it("writes a replay in batches with its positions, and reports it as replay", async () => {
    const storage = new MemoryStorage();
    await storage.commit({ positions: { [USER_STREAM]: { epoch: "e1", offset: 0 } }, meta: { user: "u1" } });
    const { client } = setup({ storage });
    const sources = new Set<string>();
    client.on("notifications", ({ source }) => sources.add(source));
    client.start();
    const replay = Array.from({ length: 1200 }, (_, i) => frame(USER_STREAM, i + 1, `r${i + 1}`, { replay: true }));
    await connect([{ stream: USER_STREAM, head: 1200 }], replay);
    await flush();
    expect(client.unread().total).toBe(1200);
    expect([...sources]).toEqual(["replay"]);
    expect((await storage.load()).positions[USER_STREAM]!.offset).toBe(1200);
  });
});

describe("rebuilding a stream the gateway could not resume", () => {
  it("pages the history, unread first, then sets the position to the head", async () => {
    const items = [
      { offset: 1, read: true, id: "h1" },
      { offset: 2, read: false, id: "h2" },
      { offset: 3, read: true, id: "h3" },
      { offset: 4, read: false, id: "h4" },
      { offset: 5, read: true, id: "h5" },
    ];
    const history = historyServer(USER_STREAM, "e2", items);
    const storage = new MemoryStorage();
    await storage.commit({ positions: { [USER_STREAM]: { epoch: "old", offset: 9 } }, meta: { user: "u1" } });
    const { client } = setup({ storage, fetch: history.fetch });
    client.start();
    const socket = await connect([{ stream: USER_STREAM, epoch: "e2", head: 5, recovered: false }]);
    // A live notification while the rebuild runs: stored, position not yet written.
    socket.push(frame(USER_STREAM, 6, "n6", { epoch: "e2" }));
    await until(() => client.notifications().length === 6);
    await flush();
    expect(history.calls[0]).toEqual({ after: 0, unread: true });
    expect(history.calls.some((c) => !c.unread)).toBe(true);
    expect(client.unread().total).toBe(3); // h2, h4 and the live n6
    expect((await storage.load()).positions[USER_STREAM]).toEqual({ epoch: "e2", offset: 6 });
  });
});

describe("rebuilding while live", () => {
  it("leaves what came after the welcome's head to live delivery: it is new, not history", async () => {
    // The history answer already holds offset 2, published after the welcome (head 1).
    const history = historyServer(USER_STREAM, "e1", [
      { offset: 1, read: false, id: "old" },
      { offset: 2, read: false, id: "new" },
    ]);
    const { client } = setup({ fetch: history.fetch });
    const sources: string[] = [];
    client.on("notifications", ({ items, source }) => sources.push(...items.map((i) => `${source}:${i.notification.id}`)));
    client.start();
    const socket = await connect([{ stream: USER_STREAM, head: 1 }]);
    await until(() => history.calls.length >= 2);
    socket.push(frame(USER_STREAM, 2, "new"));
    await until(() => client.notifications().length === 2);
    expect(sources).toEqual(["history:old", "live:new"]);
  });
});

describe("close codes", () => {
  it("4002: asks for a new token, then reconnects", async () => {
    const { client, reasons } = setup();
    client.start();
    const socket = await connect([{ stream: USER_STREAM }]);
    socket.serverClose(4002, "token_expired");
    await until(() => FakeSocket.all.length === 2, 2_000);
    expect(reasons).toEqual(["connect", "expired"]);
  });

  it("4003: waits at least the delay in the close reason", async () => {
    const { client } = setup({ random: 0 });
    client.start();
    const socket = await connect([{ stream: USER_STREAM }]);
    socket.serverClose(4003, "retry_after_ms=5000");
    await vi.advanceTimersByTimeAsync(4_900);
    expect(FakeSocket.all.length).toBe(1);
    await until(() => FakeSocket.all.length === 2, 200);
  });

  it("4100: one new token, and a second refusal signs out without looping", async () => {
    const { client, reasons } = setup();
    client.start();
    (await connect([{ stream: USER_STREAM }])).serverClose(4100, "invalid_token");
    await until(() => FakeSocket.all.length === 2, 2_000);
    FakeSocket.last().open();
    FakeSocket.last().serverClose(4100, "invalid_token");
    await flush();
    await vi.advanceTimersByTimeAsync(120_000);
    expect(FakeSocket.all.length).toBe(2);
    expect(reasons).toEqual(["connect", "rejected"]);
    expect(client.state).toMatchObject({ status: "stopped", stopReason: "signed_out" });
  });

  it.each([
    [4101, "forbidden"],
    [4104, "too_many_connections"],
    [4102, "client_error"],
    [1000, "closed"],
  ])("%i stops with %s", async (code, reason) => {
    const { client } = setup();
    client.start();
    (await connect([{ stream: USER_STREAM }])).serverClose(code, "");
    await vi.advanceTimersByTimeAsync(120_000);
    expect(FakeSocket.all.length).toBe(1);
    expect(client.state).toMatchObject({ status: "stopped", stopReason: reason });
  });

  it("1006 and 4000: reconnects with full-jitter backoff that grows", async () => {
    const { client } = setup({ random: 0.99 });
    client.start();
    const waits: number[] = [];
    client.on("state", (s) => {
      if (s.status === "offline" && s.retryAt) waits.push(s.retryAt - Date.now());
    });
    for (let i = 0; i < 4; i++) {
      await until(() => FakeSocket.all.length === i + 1, 70_000, 50);
      FakeSocket.last().serverClose(i % 2 ? 4000 : 1006, "");
      await flush();
    }
    expect(waits).toEqual([990, 1980, 3960, 7920]);
  });

  it("a connection that stayed up a minute past caught_up resets the backoff", async () => {
    const { client } = setup({ random: 0.99 });
    client.start();
    const waits: number[] = [];
    client.on("state", (s) => {
      if (s.status === "offline" && s.retryAt) waits.push(s.retryAt - Date.now());
    });
    FakeSocket.all.length || (await until(() => FakeSocket.all.length === 1));
    FakeSocket.last().serverClose(1006);
    await until(() => FakeSocket.all.length === 2, 2_000);
    const socket = await connect([{ stream: USER_STREAM }]);
    socket.autoPong = true;
    await vi.advanceTimersByTimeAsync(61_000);
    socket.serverClose(1006);
    await flush();
    expect(waits).toEqual([990, 990]);
  });
});

describe("heartbeat", () => {
  it("pings every interval and reconnects when nothing answers within the timeout", async () => {
    const { client } = setup();
    client.start();
    const socket = await connect([{ stream: USER_STREAM }]);
    await vi.advanceTimersByTimeAsync(LIMITS.heartbeat_interval_ms);
    expect(socket.frames("ping")).toHaveLength(1);
    socket.push({ type: "pong" });
    await vi.advanceTimersByTimeAsync(LIMITS.heartbeat_interval_ms);
    expect(socket.frames("ping")).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(LIMITS.heartbeat_timeout_ms);
    expect(socket.closedByClient).toBe(1000);
    expect(client.state.error?.message).toMatch(/did not answer for 10 s/);
    await until(() => FakeSocket.all.length === 2, 2_000);
  });
});

describe("tokens", () => {
  it("renews the token in band at 80 % of its life", async () => {
    const { client, reasons } = setup();
    client.start();
    const socket = await connect([{ stream: USER_STREAM }]);
    socket.autoPong = true;
    await vi.advanceTimersByTimeAsync(0.8 * 15 * 60_000 + 10);
    const refresh = socket.frames("refresh");
    expect(refresh).toHaveLength(1);
    expect(reasons).toEqual(["connect", "refresh"]);
    expect(refresh[0].access_token).toBe("token-2");
  });
});

describe("the outbox", () => {
  it("marks read at once offline, and sends it once after caught_up", async () => {
    const storage = new MemoryStorage();
    await storage.commit({
      put: [{ stream: USER_STREAM, epoch: "e1", offset: 1, read: false, notification: notification("n1") as never }],
      positions: { [USER_STREAM]: { epoch: "e1", offset: 1 } },
      meta: { user: "u1" },
    });
    const { client } = setup({ storage });
    await client.ready();
    await client.markRead(["n1"]);
    expect(client.unread().total).toBe(0);
    expect((await storage.load()).outbox).toHaveLength(1);
    client.start();
    await until(() => FakeSocket.all.length === 1);
    const socket = FakeSocket.last();
    socket.open();
    socket.push(welcome([{ stream: USER_STREAM, head: 1 }]));
    await flush();
    expect(socket.frames("mark_read")).toHaveLength(0); // not before caught_up
    socket.push({ type: "caught_up", positions: {} });
    await flush();
    const [sent] = socket.frames("mark_read");
    expect(sent.notification_ids).toEqual(["n1"]);
    socket.push({ type: "result", id: sent.id, ok: true, data: { read: ["n1"], not_found: [] } });
    await flush();
    expect((await storage.load()).outbox).toHaveLength(0);
  });

  it("resends the same id after a transient refusal, and reports a final one", async () => {
    const { client } = setup();
    client.start();
    const socket = await connect([{ stream: USER_STREAM }]);
    const results: Array<{ ok: boolean; code?: string }> = [];
    client.on("action", (r) => results.push({ ok: r.ok, ...(r.error ? { code: r.error.code } : {}) }));
    const id = await client.respond("prop-1", "accept");
    await flush();
    socket.push({ type: "result", id, ok: false, error: { code: "rate_limited", message: "slow down", retry_after_ms: 700 } });
    await flush();
    await vi.advanceTimersByTimeAsync(650);
    expect(socket.frames("proposal_respond")).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(100);
    expect(socket.frames("proposal_respond").map((f) => f.id)).toEqual([id, id]);
    socket.push({ type: "result", id, ok: false, error: { code: "conflict", message: "already rejected by u2" } });
    await flush();
    expect(results).toEqual([{ ok: false, code: "conflict" }]);
  });

  it("sends a long queue at the gateway's pace, keeping two slots of the burst", async () => {
    const { client } = setup();
    for (let i = 0; i < 60; i++) await client.acknowledge([`n${i}`]);
    client.start();
    const socket = await connect([{ stream: USER_STREAM }]);
    expect(socket.frames("acknowledge")).toHaveLength(LIMITS.actions_burst - 2);
    await vi.advanceTimersByTimeAsync(1_000);
    expect(socket.frames("acknowledge")).toHaveLength(58);
    expect(socket.frames("acknowledge").map((f) => f.notification_ids[0])).toEqual(Array.from({ length: 58 }, (_, i) => `n${i}`));
  });

  it("keeps an action the gateway does not support queued", async () => {
    const { client } = setup();
    await client.acknowledge(["n1"]);
    client.start();
    await until(() => FakeSocket.all.length === 1);
    const socket = FakeSocket.last();
    socket.open();
    socket.push(welcome([{ stream: USER_STREAM }], { features: [] }));
    socket.push({ type: "caught_up", positions: {} });
    await flush();
    expect(socket.frames("acknowledge")).toHaveLength(0);
  });

  it("mark all read covers what was seen: a later arrival stays unread", async () => {
    const { client } = setup();
    client.start();
    const socket = await connect([{ stream: USER_STREAM }]);
    socket.push(frame(USER_STREAM, 1, "n1"));
    await flush();
    await client.markAllRead();
    socket.push(frame(USER_STREAM, 2, "n2"));
    await flush();
    const [sent] = socket.frames("mark_all_read");
    expect(sent.up_to).toEqual({ [USER_STREAM]: { epoch: "e1", offset: 1 } });
    expect(client.get("n1")!.read).toBe(true);
    expect(client.get("n2")!.read).toBe(false);
  });
});

describe("read state, retractions and the user", () => {
  it("applies read and read_all from other devices, remembering up_to for later arrivals", async () => {
    const storage = new MemoryStorage();
    await storage.commit({ positions: { [USER_STREAM]: { epoch: "e1", offset: 0 } }, meta: { user: "u1" } });
    const { client } = setup({ storage });
    client.start();
    const socket = await connect([{ stream: USER_STREAM, head: 2 }]);
    socket.push(frame(USER_STREAM, 1, "n1"));
    socket.push({ type: "read", notification_ids: ["n1"] });
    socket.push({ type: "read_all", before: new Date().toISOString(), up_to: { [USER_STREAM]: { epoch: "e1", offset: 2 } } });
    socket.push(frame(USER_STREAM, 2, "n2"));
    socket.push(frame(USER_STREAM, 3, "n3"));
    await flush();
    expect(client.notifications().map((i) => [i.notification.id, i.read])).toEqual([
      ["n3", false],
      ["n2", true],
      ["n1", true],
    ]);
  });

  it("a retraction in its slot advances the position; the notification never comes back", async () => {
    const storage = new MemoryStorage();
    await storage.commit({ positions: { [USER_STREAM]: { epoch: "e1", offset: 0 } }, meta: { user: "u1" } });
    const { client } = setup({ storage });
    const retracted: string[] = [];
    client.on("retracted", ({ ids }) => retracted.push(...ids));
    client.start();
    const socket = await connect([{ stream: USER_STREAM, head: 2 }], [
      frame(USER_STREAM, 1, "n1", { replay: true }),
      { type: "retracted", retractions: [{ notification_id: "n2", stream: USER_STREAM, epoch: "e1", offset: 2, at: new Date().toISOString() }] },
    ]);
    socket.push({ type: "retracted", retractions: [{ notification_id: "n1", stream: USER_STREAM, epoch: "e1", offset: 1, at: new Date().toISOString() }] });
    socket.push(frame(USER_STREAM, 3, "n3"));
    await flush();
    expect(retracted).toEqual(["n1"]);
    expect(client.notifications().map((i) => i.notification.id)).toEqual(["n3"]);
    expect((await storage.load()).positions[USER_STREAM]!.offset).toBe(3);
  });

  it("another user signing in on the browser starts from an empty store", async () => {
    const storage = new MemoryStorage();
    await storage.commit({
      put: [{ stream: "user:someone", epoch: "e1", offset: 1, read: false, notification: notification("old") as never }],
      positions: { "user:someone": { epoch: "e1", offset: 1 } },
      meta: { user: "someone" },
    });
    const { client } = setup({ storage });
    client.start();
    await until(() => FakeSocket.all.length === 1);
    FakeSocket.last().open();
    FakeSocket.last().push(welcome([{ stream: USER_STREAM }]));
    await flush();
    expect(client.notifications()).toEqual([]);
    await until(() => FakeSocket.all.length === 2, 2_000);
    FakeSocket.last().open();
    expect(FakeSocket.last().sent[1].positions).toEqual({});
    expect((await storage.load()).meta.user).toBe("u1");
  });
});

describe("typing and presence", () => {
  it("shows who types until the indicator lapses, and relays presence", async () => {
    const { client } = setup();
    client.start();
    const socket = await connect([{ stream: USER_STREAM }]);
    const presence: string[] = [];
    client.on("presence", (p) => presence.push(`${p.userId}:${p.status}`));
    socket.push({ type: "ephemeral", stream: "conversation:dupont:c1", at: new Date().toISOString(), kind: "typing-indicator", data: { conversation_id: "c1", user_id: "u2", active: true } });
    socket.push({ type: "ephemeral", stream: "tenant:dupont", at: new Date().toISOString(), kind: "user-status", data: { user_id: "u2", status: "busy" } });
    await flush();
    expect(client.typists("c1").map((t) => t.userId)).toEqual(["u2"]);
    expect(presence).toEqual(["u2:busy"]);
    await vi.advanceTimersByTimeAsync(6_001);
    expect(client.typists("c1")).toEqual([]);
    expect(client.typing("c1", true)).toBe(true);
    expect(socket.frames("typing")[0]).toMatchObject({ conversation_id: "c1", active: true });
    socket.serverClose(1006);
    await flush();
    expect(client.typing("c1", false)).toBe(false);
  });
});

describe("stop and start", () => {
  it("a stop then a start runs one connection, not two", async () => {
    const { client } = setup();
    client.start();
    await connect([{ stream: USER_STREAM }]);
    client.stop();
    client.start();
    await until(() => FakeSocket.all.length >= 2);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(FakeSocket.all.filter((s) => s.readyState !== 3)).toHaveLength(1);
    expect(FakeSocket.all).toHaveLength(2);
  });
});
