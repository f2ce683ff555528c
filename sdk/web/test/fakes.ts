/**
 * Test doubles for the unit tests: a scripted WebSocket whose server side the test
 * plays, a history endpoint over an in-memory stream, and a helper that lets fake
 * timers and pending promises run until a condition holds.
 */

import { vi } from "vitest";

export class FakeSocket {
  static all: FakeSocket[] = [];
  static last(): FakeSocket {
    const socket = FakeSocket.all.at(-1);
    if (!socket) throw new Error("no socket was opened");
    return socket;
  }

  readyState = 0;
  sent: any[] = [];
  closedByClient: number | undefined;
  onopen: ((e: unknown) => void) | null = null;
  onmessage: ((e: { data: unknown }) => void) | null = null;
  onclose: ((e: { code: number; reason: string }) => void) | null = null;
  onerror: ((e: unknown) => void) | null = null;

  constructor(
    readonly url: string,
    readonly protocol: string,
  ) {
    FakeSocket.all.push(this);
  }

  /** Answer the client's `ping` frames as the gateway does. */
  autoPong = false;

  send(text: string): void {
    if (this.readyState !== 1) throw new Error("send on a socket that is not open");
    const frame = JSON.parse(text);
    this.sent.push(frame);
    if (this.autoPong && frame.type === "ping") queueMicrotask(() => this.push({ type: "pong" }));
  }

  close(code?: number): void {
    this.closedByClient = code ?? 1000;
    this.readyState = 3;
  }

  // ---- the server's side -----------------------------------------------------------

  open(): void {
    this.readyState = 1;
    this.onopen?.({});
  }

  push(frame: object): void {
    this.onmessage?.({ data: JSON.stringify(frame) });
  }

  serverClose(code: number, reason = ""): void {
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }

  frames(type: string): any[] {
    return this.sent.filter((f) => f.type === type);
  }
}

/** Lets timers due now and pending promises run, until `done()` or `limitMs` of fake time. */
export async function until(done: () => boolean, limitMs = 5_000, stepMs = 10): Promise<void> {
  for (let spent = 0; spent <= limitMs; spent += stepMs) {
    await vi.advanceTimersByTimeAsync(0);
    if (done()) return;
    await vi.advanceTimersByTimeAsync(stepMs);
  }
  if (!done()) throw new Error(`condition not met within ${limitMs} ms of fake time`);
}

/** Runs pending promises without moving time. */
export async function flush(): Promise<void> {
  for (let i = 0; i < 5; i++) await vi.advanceTimersByTimeAsync(0);
}

export const LIMITS = { heartbeat_interval_ms: 30_000, heartbeat_timeout_ms: 10_000, max_message_bytes: 65_536, actions_per_second: 20, actions_burst: 40 };
export const USER = { id: "u1", email: "marie@dupont.fr", tenant: "dupont", tenant_name: "Cabinet Dupont", role: "lawyer" };

export function welcome(streams: Array<{ stream: string; epoch?: string; head?: number; first?: number; recovered?: boolean }>, extra: object = {}) {
  return {
    type: "welcome",
    connection_id: "1",
    user: USER,
    streams: streams.map((s) => ({ epoch: "e1", head: 0, first: 1, recovered: true, ...s })),
    token_expires_at: new Date(Date.now() + 15 * 60_000).toISOString(),
    limits: LIMITS,
    features: ["acknowledge", "shown", "retract"],
    ...extra,
  };
}

export function notification(id: string, extra: object = {}) {
  return {
    id,
    kind: "email-received",
    data: { subject: `Mail ${id}`, from: "Maître Martin" },
    created_at: new Date(Date.now()).toISOString(),
    urgency: "normal",
    title: `Nouveau mail ${id}`,
    body: "",
    ...extra,
  };
}

export function frame(stream: string, offset: number, id: string, opts: { epoch?: string; replay?: boolean; notification?: object } = {}) {
  return { type: "notification", stream, epoch: opts.epoch ?? "e1", offset, replay: opts.replay ?? false, notification: opts.notification ?? notification(id) };
}

/** A history endpoint over `items` (offset → notification) of one stream. */
export function historyServer(stream: string, epoch: string, items: Array<{ offset: number; read: boolean; id: string }>, pageSize = 2) {
  const calls: Array<{ after: number; unread: boolean }> = [];
  const fetchImpl = (async (input: string) => {
    const url = new URL(input);
    const after = Number(url.searchParams.get("after"));
    const unread = url.searchParams.get("unread") === "true";
    calls.push({ after, unread });
    if (url.searchParams.get("stream") !== stream) return new Response("{}", { status: 403 });
    const matching = items.filter((i) => i.offset > after && (!unread || !i.read)).sort((a, b) => a.offset - b.offset);
    const page = matching.slice(0, pageSize);
    const head = Math.max(0, ...items.map((i) => i.offset));
    const body = {
      stream,
      epoch,
      first: 1,
      head,
      notifications: page.map((i) => ({ offset: i.offset, read: i.read, notification: notification(i.id) })),
      ...(matching.length > pageSize ? { next_after: page.at(-1)!.offset } : {}),
    };
    return new Response(JSON.stringify(body), { status: 200, headers: { "content-type": "application/json" } });
  }) as unknown as typeof fetch;
  return { fetch: fetchImpl, calls };
}

/** A history endpoint where every stream is empty (epoch `e1`): streams never held rebuild to nothing. */
export const emptyHistory = (async (input: string) => {
  const stream = new URL(input).searchParams.get("stream");
  return new Response(JSON.stringify({ stream, epoch: "e1", first: 1, head: 0, notifications: [] }), { status: 200 });
}) as unknown as typeof fetch;
