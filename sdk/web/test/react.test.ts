// @vitest-environment jsdom
import { act, renderHook } from "@testing-library/react";
import { createElement, type ReactNode } from "react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

import { MemoryStorage, TocsinClient } from "../src/index.js";
import { TocsinProvider, useNotifications, useProposals, useTocsin, useTyping, useUnread, usePresence } from "../src/react/index.js";
import { emptyHistory, FakeSocket, flush, frame, notification, until, welcome } from "./fakes.js";

const CONV = "conversation:dupont:c1";
let client: TocsinClient;

function wrapper({ children }: { children?: ReactNode }) {
  return createElement(TocsinProvider, { client }, children);
}

async function connected() {
  client.start();
  await until(() => FakeSocket.all.length === 1);
  const socket = FakeSocket.last();
  socket.open();
  socket.push(welcome([{ stream: "user:u1" }, { stream: CONV }]));
  socket.push({ type: "caught_up", positions: {} });
  await flush();
  return socket;
}

function proposal(id: string, pid: string, minutesAgo: number) {
  return notification(id, {
    kind: "proposal-created",
    data: { proposal_id: pid, starts_at: "2026-12-08T10:00:00+01:00", proposed_by: "Maître Martin", conversation_id: "c1" },
    created_at: new Date(Date.now() - minutesAgo * 60_000).toISOString(),
  });
}

beforeEach(() => {
  vi.useFakeTimers({ now: new Date("2026-12-07T09:00:00Z") });
  FakeSocket.all = [];
  client = new TocsinClient({ url: "https://gw.test", getToken: () => "t", storage: new MemoryStorage(), WebSocket: FakeSocket as never, fetch: emptyHistory, watchPage: false, shareTabs: false });
});
afterEach(() => {
  client.dispose();
  vi.useRealTimers();
});

describe("react hooks", () => {
  it("useTocsin follows the connection; useNotifications and useUnread re-render on delivery and on read", async () => {
    const state = renderHook(() => useTocsin(), { wrapper });
    const list = renderHook(() => useNotifications({ kind: "email-received" }), { wrapper });
    const unread = renderHook(() => useUnread(), { wrapper });
    expect(state.result.current.connected).toBe(false);
    const socket = await act(connected);
    expect(state.result.current).toMatchObject({ connected: true, status: "connected", user: { tenant_name: "Cabinet Dupont" } });
    await act(async () => {
      socket.push(frame("user:u1", 1, "n1"));
      socket.push(frame("user:u1", 2, "n2", { notification: notification("n2", { kind: "system-notification", data: { level: "info" } }) }));
      await flush();
    });
    expect(list.result.current.items.map((i) => i.notification.id)).toEqual(["n1"]);
    expect(unread.result.current).toEqual({ total: 2, byKind: { "email-received": 1, "system-notification": 1 } });
    await act(async () => {
      await list.result.current.markAllRead();
      await flush();
    });
    expect(unread.result.current.total).toBe(1);
    expect(socket.frames("mark_all_read")[0].kind).toBe("email-received");
    await act(async () => {
      socket.serverClose(1006);
      await flush();
    });
    expect(state.result.current.status).toBe("offline");
    expect(state.result.current.offlineSince).toBe(Date.now());
  });

  it("useProposals shows at most five recent proposals, clears them after an hour, and reports a refused answer", async () => {
    const socket = await connected();
    const hook = renderHook(() => useProposals("c1"), { wrapper });
    await act(async () => {
      for (let i = 1; i <= 7; i++) socket.push(frame(CONV, i, `p${i}`, { notification: proposal(`p${i}`, `prop-${i}`, 70 - i * 5) }));
      await flush();
    });
    // p1 (65 min ago) is over the hour; of the six left, the five newest.
    expect(hook.result.current.proposals.map((p) => p.proposalId)).toEqual(["prop-7", "prop-6", "prop-5", "prop-4", "prop-3"]);
    let id = "";
    await act(async () => {
      id = await hook.result.current.accept("prop-7");
      await flush();
    });
    expect(hook.result.current.proposals[0]!.answer).toEqual({ response: "accept", state: "sending" });
    await act(async () => {
      socket.push({ type: "result", id, ok: false, error: { code: "conflict", message: "already rejected by Marie" } });
      await flush();
    });
    expect(hook.result.current.proposals[0]!.answer).toMatchObject({ state: "failed", error: { code: "conflict" } });
    expect(hook.result.current.lastResult).toMatchObject({ ok: false, type: "proposal_respond" });
    // Each proposal leaves the list at its hour, the oldest first.
    const left: number[] = [];
    for (let minute = 0; minute < 30; minute += 5) {
      await act(async () => {
        await vi.advanceTimersByTimeAsync(5 * 60_000 + 10);
      });
      left.push(hook.result.current.proposals.length);
    }
    expect(left).toEqual([4, 3, 2, 1, 0, 0]);
  });

  it("useTyping shows others typing and paces the user's own indicator; usePresence relays statuses", async () => {
    const socket = await connected();
    const typing = renderHook(() => useTyping("c1"), { wrapper });
    const presence = renderHook(() => usePresence(), { wrapper });
    await act(async () => {
      socket.push({ type: "ephemeral", stream: CONV, at: new Date().toISOString(), kind: "typing-indicator", data: { conversation_id: "c1", user_id: "u2", active: true } });
      socket.push({ type: "ephemeral", stream: "tenant:dupont", at: new Date().toISOString(), kind: "user-status", data: { user_id: "u2", status: "away" } });
      await flush();
    });
    expect(typing.result.current.typists.map((t) => t.userId)).toEqual(["u2"]);
    expect(presence.result.current.presence.get("u2")).toBe("away");
    act(() => {
      typing.result.current.typed();
      typing.result.current.typed();
    });
    expect(socket.frames("typing").map((f) => f.active)).toEqual([true]);
    await act(async () => {
      await vi.advanceTimersByTimeAsync(5_000);
    });
    expect(socket.frames("typing").map((f) => f.active)).toEqual([true, false]);
    expect(typing.result.current.typists.map((t) => t.userId)).toEqual(["u2"]);
    await act(async () => {
      await vi.advanceTimersByTimeAsync(1_001); // the others' indicator lapses after 6 s
    });
    expect(typing.result.current.typists).toEqual([]);
    act(() => {
      presence.result.current.setPresence("busy");
    });
    expect(socket.frames("presence")[0].status).toBe("busy");
  });
});
