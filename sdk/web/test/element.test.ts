// @vitest-environment jsdom
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

import { MemoryStorage, TocsinClient } from "../src/index.js";
import "../src/element/index.js";
import { dictionaries as bellWords } from "../src/element/words.js";
import { dictionaries as panelWords } from "../../../ui/src/lib/i18n.js";
import { emptyHistory, FakeSocket, flush, frame, notification, until, welcome } from "./fakes.js";

let client: TocsinClient;

async function bell(lang = "fr") {
  const el = document.createElement("tocsin-bell");
  el.setAttribute("lang", lang);
  document.body.append(el);
  el.client = client;
  client.start();
  await until(() => FakeSocket.all.length === 1);
  const socket = FakeSocket.last();
  socket.open();
  socket.push(welcome([{ stream: "user:u1" }]));
  socket.push({ type: "caught_up", positions: {} });
  await flush();
  const root = el.shadowRoot!;
  return { el, root, socket, q: (css: string) => root.querySelector<HTMLElement>(css), qa: (css: string) => [...root.querySelectorAll<HTMLElement>(css)] };
}

beforeEach(() => {
  vi.useFakeTimers({ now: new Date("2026-12-07T09:00:00Z") });
  FakeSocket.all = [];
  client = new TocsinClient({ url: "https://gw.test", getToken: () => "t", storage: new MemoryStorage(), WebSocket: FakeSocket as never, fetch: emptyHistory, watchPage: false, shareTabs: false });
});
afterEach(() => {
  client.dispose();
  document.body.replaceChildren();
  vi.useRealTimers();
});

describe("<tocsin-bell>", () => {
  it("shows the unread badge and the connection in the bell's accessible name", async () => {
    const { q, socket } = await bell();
    expect(q(".badge")!.hidden).toBe(true);
    socket.push(frame("user:u1", 1, "n1"));
    socket.push(frame("user:u1", 2, "n2"));
    await flush();
    expect(q(".badge")!.textContent).toBe("2");
    expect(q(".bell")!.getAttribute("aria-label")).toBe("Notifications, 2 non lus, En direct — Cabinet Dupont");
    expect(q(".dot")!.dataset.status).toBe("connected");
    socket.serverClose(1006);
    await flush();
    expect(q(".dot")!.dataset.status).toBe("offline");
    expect(q(".bell")!.getAttribute("aria-label")).toMatch(/Déconnecté depuis \d\d:\d\d$/);
  });

  it("opens a panel with the desktop's tabs, moves between them with the keyboard, and closes on Escape", async () => {
    const { el, q, qa, socket } = await bell("en");
    socket.push(frame("user:u1", 1, "n1"));
    socket.push(frame("user:u1", 2, "d1", { notification: notification("d1", { kind: "deadline-alert", urgency: "critical", title: "Appel — RG 24/01234", data: { deadline_id: "d-9", deadline_type: "appel", due_at: "2026-12-08T18:00:00+01:00", time_zone: "Europe/Paris", urgency: "critical", remaining_days: 1 } }) }));
    socket.push(frame("user:u1", 3, "x1", { notification: notification("x1", { kind: "court-hearing", data: {}, title: "A newer kind" }) }));
    await flush();
    q(".bell")!.click();
    expect(q(".panel")!.hidden).toBe(false);
    expect(q(".bell")!.getAttribute("aria-expanded")).toBe("true");
    expect(qa("[role=tab]").map((tab) => tab.firstChild!.textContent)).toEqual(["Emails", "Dossiers", "Deadlines", "Proposals", "System"]);
    expect(el.shadowRoot!.activeElement?.id).toBe("tab-emails");
    const keydown = (key: string) => el.shadowRoot!.activeElement!.dispatchEvent(new KeyboardEvent("keydown", { key, bubbles: true }));
    keydown("ArrowLeft");
    expect(el.shadowRoot!.activeElement?.id).toBe("tab-system");
    expect(qa("[role=tabpanel] .title").map((t) => t.textContent)).toEqual(["A newer kind"]);
    keydown("Home");
    keydown("ArrowRight");
    keydown("ArrowRight");
    expect(q('[role=tab][aria-selected="true"]')!.id).toBe("tab-deadlines");
    expect(q(".item.critical .title")!.textContent).toBe("Appel — RG 24/01234");
    keydown("Escape");
    expect(q(".panel")!.hidden).toBe(true);
    expect(el.shadowRoot!.activeElement).toBe(q(".bell"));
  });

  it("marks one read and a whole tab read through the client", async () => {
    const { q, qa, socket } = await bell();
    for (let i = 1; i <= 3; i++) socket.push(frame("user:u1", i, `n${i}`));
    await flush();
    q(".bell")!.click();
    qa(".item button").at(-1)!.click(); // the oldest's "Marquer comme lu"
    await flush();
    expect(socket.frames("mark_read")[0].notification_ids).toEqual(["n1"]);
    expect(q(".badge")!.textContent).toBe("2");
    q('[data-key="mark-all"]')!.click();
    await flush();
    expect(socket.frames("mark_all_read")[0]).toMatchObject({ kind: "email-received" });
    expect(q(".badge")!.hidden).toBe(true);
    expect(q(".toolbar span")!.textContent).toBe("Tout est lu");
  });

  it("takes a deadline in (Pris en compte) and shows who did, distinct from read", async () => {
    const { q, socket } = await bell();
    socket.push(frame("user:u1", 1, "d1", { notification: notification("d1", { kind: "deadline-alert", urgency: "critical", title: "Appel", data: { deadline_id: "d-9", deadline_type: "appel", due_at: "2026-12-08T18:00:00+01:00", time_zone: "Europe/Paris", urgency: "critical", remaining_days: 1 } }) }));
    await flush();
    q(".bell")!.click();
    q("#tab-deadlines")!.click();
    const button = q('[data-key="ack-d1"]')!;
    expect(button.getAttribute("aria-label")).toBe("Pris en compte : Appel");
    button.click();
    await flush();
    expect(socket.frames("acknowledge")[0].notification_ids).toEqual(["d1"]);
    expect(q(".ack")!.textContent).toBe("Envoi…");
    socket.push({ type: "acknowledged", acknowledgements: [{ deadline_id: "d-9", user_id: "u1", user_name: "Marie Dupont", at: "2026-12-07T09:05:00Z" }] });
    await flush();
    expect(q(".ack")!.textContent).toMatch(/^Pris en compte par Marie Dupont à \d\d:\d\d$/);
    expect(q(".item.unread")).not.toBeNull(); // acknowledged is not read
  });

  it("sets gateway text as text, and offers only safe links", async () => {
    const { q, qa, socket } = await bell();
    socket.push(frame("user:u1", 1, "n1", { notification: notification("n1", { title: "<img src=x onerror=alert(1)>", url: "javascript:alert(1)" }) }));
    socket.push(frame("user:u1", 2, "n2", { notification: notification("n2", { url: "https://secib.example/dossier/2026-0142" }) }));
    await flush();
    q(".bell")!.click();
    expect(q("img")).toBeNull();
    expect(qa(".title").map((t) => t.textContent)).toContain("<img src=x onerror=alert(1)>");
    expect(qa("a").map((a) => a.getAttribute("href"))).toEqual(["https://secib.example/dossier/2026-0142"]);
  });

  it("announces a new notification to screen readers", async () => {
    const { q, socket } = await bell();
    socket.push(frame("user:u1", 1, "n1"));
    await flush();
    expect(q("[aria-live]")!.textContent).toBe("Nouveau : Nouveau mail n1");
  });
});

describe("the bell's words", () => {
  it("are the desktop panel's for every key they share", () => {
    for (const locale of ["fr", "en"] as const) {
      const panel = panelWords[locale] as Record<string, string>;
      for (const [key, text] of Object.entries(bellWords[locale])) {
        if (key.startsWith("bell.")) continue;
        expect(`${key}: ${text}`).toBe(`${key}: ${panel[key]}`);
      }
    }
  });
});
