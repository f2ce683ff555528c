// @vitest-environment jsdom
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

import { MemoryStorage, TocsinClient } from "../src/index.js";
import "../src/element/index.js";
import { emptyHistory, FakeSocket, flush, frame, notification, until, welcome } from "./fakes.js";

/** The browser's Notification, recorded (the real one is exercised in Chromium by tests/src/web_sdk.rs). */
class FakeNotification {
  static permission: NotificationPermission = "default";
  static asked = 0;
  static shown: FakeNotification[] = [];
  static async requestPermission() {
    FakeNotification.asked += 1;
    FakeNotification.permission = "granted";
    return FakeNotification.permission;
  }
  closed = false;
  onclick: (() => void) | null = null;
  onclose: (() => void) | null = null;
  constructor(
    readonly title: string,
    readonly options: NotificationOptions,
  ) {
    FakeNotification.shown.push(this);
  }
  close() {
    this.closed = true;
    this.onclose?.();
  }
}

let client: TocsinClient;

beforeEach(() => {
  vi.useFakeTimers({ now: new Date("2026-12-07T09:00:00Z") });
  FakeSocket.all = [];
  FakeNotification.permission = "default";
  FakeNotification.asked = 0;
  FakeNotification.shown = [];
  vi.stubGlobal("Notification", FakeNotification);
  window.focus = () => undefined; // jsdom has none
  client = new TocsinClient({ url: "https://gw.test", getToken: () => "t", storage: new MemoryStorage(), WebSocket: FakeSocket as never, fetch: emptyHistory, watchPage: false, shareTabs: false });
});
afterEach(() => {
  client.dispose();
  document.body.replaceChildren();
  vi.unstubAllGlobals();
  vi.useRealTimers();
});

const critical = (id: string) =>
  notification(id, {
    kind: "deadline-alert",
    urgency: "critical",
    title: "Appel — RG 24/01234",
    body: "Expire demain à 18 h",
    data: { deadline_id: "d-9", deadline_type: "appel", due_at: "2026-12-08T18:00:00+01:00", time_zone: "Europe/Paris", urgency: "critical", remaining_days: 1 },
  });

async function page() {
  const bell = document.createElement("tocsin-bell");
  bell.setAttribute("lang", "fr");
  document.body.append(bell);
  bell.client = client;
  client.start();
  await until(() => FakeSocket.all.length === 1);
  const socket = FakeSocket.last();
  socket.open();
  socket.push(welcome([{ stream: "user:u1" }]));
  socket.push({ type: "caught_up", positions: {} });
  await flush();
  return { bell, socket };
}

describe("browser alerts", () => {
  it("ask for permission on the first click, then raise a sticky alert for a critical notification only", async () => {
    const { bell, socket } = await page();
    socket.push(frame("user:u1", 1, "d1", { notification: critical("d1") }));
    await flush();
    expect(FakeNotification.shown).toHaveLength(0); // not allowed yet: the badge only
    bell.shadowRoot!.querySelector<HTMLElement>(".bell")!.click();
    await flush();
    expect(FakeNotification.asked).toBe(1);
    socket.push(frame("user:u1", 2, "n2"));
    socket.push(frame("user:u1", 3, "d3", { notification: critical("d3") }));
    await flush();
    expect(FakeNotification.shown.map((n) => [n.title, n.options.requireInteraction, n.options.tag])).toEqual([["Appel — RG 24/01234", true, "d3"]]);
    expect(socket.frames("shown")[0].notification_ids).toEqual(["d3"]);
  });

  it("close when the notification is read on another device, and open the panel on click", async () => {
    FakeNotification.permission = "granted";
    const { bell, socket } = await page();
    socket.push(frame("user:u1", 1, "d1", { notification: critical("d1") }));
    await flush();
    const [alert] = FakeNotification.shown;
    socket.push({ type: "read", notification_ids: ["d1"] });
    await flush();
    expect(alert!.closed).toBe(true);
    socket.push(frame("user:u1", 2, "d2", { notification: critical("d2") }));
    await flush();
    FakeNotification.shown[1]!.onclick!();
    await flush();
    expect(bell.shadowRoot!.querySelector<HTMLElement>(".panel")!.hidden).toBe(false);
    expect(bell.shadowRoot!.querySelector('[role=tab][aria-selected="true"]')!.id).toBe("tab-deadlines");
    expect(socket.frames("mark_read").at(-1).notification_ids).toEqual(["d2"]);
  });

  it("say so in the panel when permission was refused", async () => {
    FakeNotification.permission = "denied";
    const { bell, socket } = await page();
    socket.push(frame("user:u1", 1, "d1", { notification: critical("d1") }));
    await flush();
    bell.shadowRoot!.querySelector<HTMLElement>(".bell")!.click();
    await flush();
    expect(FakeNotification.shown).toHaveLength(0);
    expect(bell.shadowRoot!.querySelector(".note")!.textContent).toBe("Alertes du navigateur refusées : le badge reste à jour.");
    expect(bell.shadowRoot!.querySelector(".badge")!.textContent).toBe("1");
  });
});
