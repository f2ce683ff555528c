/**
 * `<tocsin-bell>`: a notification bell for any page, without a framework. The bell
 * shows the unread badge and a connection dot; it opens a panel with the desktop's
 * five tabs (WAI-ARIA tabs: arrows, Home, End), each item's mark read and link, a
 * deadline alert's "Pris en compte", and mark all read per tab. New notifications are announced to screen readers; critical
 * ones raise a browser notification that stays until dismissed (`alerts.ts`).
 *
 * The page gives it a started {@link TocsinClient} (`bell.client = client`); the
 * language follows the `lang` attribute (or the page's), French by default.
 * Everything the gateway sent is set as text, never parsed as HTML.
 */

import type { TocsinClient } from "../client.js";
import type { InboxItem } from "../types.js";
import { Alerts } from "./alerts.js";
import { safeLink } from "./link.js";
import { STYLE } from "./style.js";
import { kindsOf, TABS, tabKeyTarget, tabOf, type Tab } from "./tabs.js";
import { detectLocale, t, unreadCount, type Locale, type WordKey } from "./words.js";

const BELL_ICON = `<svg viewBox="0 0 24 24" aria-hidden="true" focusable="false"><path fill="currentColor" d="M12 22a2.5 2.5 0 0 0 2.45-2h-4.9A2.5 2.5 0 0 0 12 22Zm7-6V11a7 7 0 0 0-5.5-6.84V3.5a1.5 1.5 0 0 0-3 0v.66A7 7 0 0 0 5 11v5l-2 2v1h18v-1l-2-2Z"/></svg>`;

/** Creates an element with attributes and children (strings become text nodes). */
function h(tag: string, attrs: Record<string, string | boolean | undefined> = {}, ...children: Array<Node | string | undefined>): HTMLElement {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === true) el.setAttribute(name, "");
    else if (typeof value === "string") el.setAttribute(name, value);
  }
  for (const child of children) if (child !== undefined) el.append(child);
  return el;
}

export class TocsinBell extends HTMLElement {
  static readonly observedAttributes = ["lang"];

  #client: TocsinClient | undefined;
  #off: Array<() => void> = [];
  #alerts: Alerts | undefined;
  #tab: Tab = "emails";
  /** Deadlines whose acknowledgement this bell sent and the gateway has not confirmed. */
  readonly #acknowledging = new Set<string>();
  #open = false;
  readonly #root: ShadowRoot;
  readonly #button: HTMLButtonElement;
  readonly #badge: HTMLElement;
  readonly #dot: HTMLElement;
  readonly #panel: HTMLElement;
  readonly #live: HTMLElement;
  readonly #onDocumentClick = (event: MouseEvent) => {
    if (this.#open && !event.composedPath().includes(this)) this.close();
  };

  constructor() {
    super();
    this.#root = this.attachShadow({ mode: "open" });
    const style = document.createElement("style");
    style.textContent = STYLE;
    this.#button = h("button", { class: "bell", part: "button", type: "button", "aria-haspopup": "dialog", "aria-expanded": "false" }) as HTMLButtonElement;
    this.#button.innerHTML = BELL_ICON; // a constant, not gateway data
    this.#badge = h("span", { class: "badge", part: "badge", "aria-hidden": "true", hidden: true });
    this.#dot = h("span", { class: "dot", part: "dot", "aria-hidden": "true" });
    this.#button.append(this.#badge, this.#dot);
    this.#panel = h("div", { class: "panel", part: "panel", role: "dialog", hidden: true });
    this.#live = h("div", { class: "sr-only", "aria-live": "polite" });
    this.#root.append(style, this.#button, this.#panel, this.#live);
    this.#button.addEventListener("click", () => (this.#open ? this.close() : this.openPanel()));
    this.#panel.addEventListener("keydown", (event) => this.#keydown(event));
  }

  /** The client whose notifications the bell shows. */
  get client(): TocsinClient | undefined {
    return this.#client;
  }

  set client(client: TocsinClient | undefined) {
    this.#detach();
    this.#client = client;
    if (client && this.isConnected) this.#attach(client);
    this.#render();
  }

  connectedCallback(): void {
    document.addEventListener("click", this.#onDocumentClick);
    if (this.#client && this.#off.length === 0) this.#attach(this.#client);
    this.#render();
  }

  disconnectedCallback(): void {
    document.removeEventListener("click", this.#onDocumentClick);
    this.#detach();
  }

  attributeChangedCallback(): void {
    this.#render();
  }

  /** Opens the panel (on `tab` if given) and moves the focus into it. */
  openPanel(tab?: Tab): void {
    if (tab) this.#tab = tab;
    this.#open = true;
    // A click is a user gesture: the one moment a browser lets a page ask.
    void Alerts.ask().then(() => this.#render());
    this.#render();
    (this.#panel.querySelector<HTMLElement>('[role=tab][aria-selected="true"]'))?.focus();
  }

  /** Closes the panel and gives the focus back to the bell. */
  close(): void {
    if (!this.#open) return;
    this.#open = false;
    this.#render();
    this.#button.focus();
  }

  get #locale(): Locale {
    return detectLocale(this.getAttribute("lang") ?? this.closest("[lang]")?.getAttribute("lang") ?? (typeof navigator !== "undefined" ? navigator.language : undefined));
  }

  #w(key: WordKey, params?: Record<string, string | number>): string {
    return t(this.#locale, key, params);
  }

  #attach(client: TocsinClient): void {
    const render = () => this.#render();
    this.#off.push(
      client.on("change", render),
      client.on("state", render),
      client.on("read", render),
      client.on("retracted", render),
      client.on("notifications", ({ items, source }) => {
        if (source === "live" && items.length > 0) this.#live.textContent = this.#w("live.new", { title: items.at(-1)!.notification.title });
        render();
      }),
    );
    this.#alerts = new Alerts(client, () => this.#locale, (item) => {
      this.openPanel(tabOf(item.notification.kind));
      void client.markRead([item.notification.id]);
    });
  }

  #detach(): void {
    for (const off of this.#off.splice(0)) off();
    this.#alerts?.dispose();
    this.#alerts = undefined;
  }

  // ---- rendering -----------------------------------------------------------------

  #render(): void {
    const client = this.#client;
    const unread = client?.unread().total ?? 0;
    const status = this.#statusText();
    this.#badge.hidden = unread === 0;
    this.#badge.textContent = unread > 99 ? "99+" : String(unread);
    this.#dot.dataset.status = client?.state.status ?? "idle";
    this.#button.setAttribute("aria-expanded", String(this.#open));
    this.#button.setAttribute("aria-label", [this.#w("bell.label"), unread ? unreadCount(this.#locale, unread) : this.#w("list.all_read"), status].join(", "));
    this.#button.title = status;
    this.#panel.hidden = !this.#open;
    if (!this.#open) return;
    // Keep the focus on the same control across re-renders.
    const focused = (this.#root.activeElement as HTMLElement | null)?.dataset.key;
    this.#panel.replaceChildren(...this.#panelContent(client));
    this.#panel.setAttribute("aria-label", this.#w("bell.label"));
    if (focused) [...this.#panel.querySelectorAll<HTMLElement>("[data-key]")].find((el) => el.dataset.key === focused)?.focus();
  }

  #statusText(): string {
    const state = this.#client?.state;
    if (!state) return this.#w("conn.signed_out");
    switch (state.status) {
      case "connected":
        return this.#w("conn.connected", { tenant: state.user?.tenant_name ?? state.user?.tenant ?? "" });
      case "offline":
        return state.offlineSince ? this.#w("conn.offline", { time: this.#clock(state.offlineSince) }) : this.#w("conn.connecting");
      case "stopped": {
        const reason = state.stopReason;
        if (reason === "signed_out" || reason === "forbidden" || reason === "too_many_connections") return this.#w(`bell.stopped.${reason}`);
        return this.#w("bell.stopped.other");
      }
      default:
        return this.#w("conn.connecting");
    }
  }

  #panelContent(client: TocsinClient | undefined): Node[] {
    const header = h("header", {}, h("span", { class: "status", role: "status" }, this.#statusText()));
    if (client?.state.status === "stopped") {
      const retry = h("button", { type: "button", "data-key": "retry" }, this.#w("bell.retry"));
      retry.addEventListener("click", () => client.reconnect());
      header.append(retry);
    }
    const close = h("button", { type: "button", "aria-label": this.#w("bell.close"), "data-key": "close" }, "×");
    close.addEventListener("click", () => this.close());
    header.append(close);
    const nodes: Node[] = [header];
    if (Alerts.permission() === "denied") nodes.push(h("p", { class: "note", role: "note" }, this.#w("bell.notify.denied")));
    nodes.push(this.#tabList(client), this.#tabPanel(client));
    return nodes;
  }

  #tabList(client: TocsinClient | undefined): HTMLElement {
    const list = h("div", { role: "tablist", "aria-label": this.#w("tabs.label") });
    for (const tab of TABS) {
      const count = this.#items(client, tab).filter((item) => !item.read).length;
      const selected = tab === this.#tab;
      const button = h(
        "button",
        { type: "button", role: "tab", id: `tab-${tab}`, part: "tab", "data-key": `tab-${tab}`, "aria-selected": String(selected), "aria-controls": "tabpanel", tabindex: selected ? "0" : "-1" },
        this.#w(`tab.${tab}`),
        count ? h("span", { class: "count" }, String(count), h("span", { class: "sr-only" }, ` ${this.#w("tab.unread_sr")}`)) : undefined,
      );
      button.addEventListener("click", () => {
        this.#tab = tab;
        this.#render();
      });
      list.append(button);
    }
    return list;
  }

  #tabPanel(client: TocsinClient | undefined): HTMLElement {
    const panel = h("div", { role: "tabpanel", id: "tabpanel", "aria-labelledby": `tab-${this.#tab}` });
    const items = this.#items(client, this.#tab);
    const unread = items.filter((item) => !item.read);
    const toolbar = h("div", { class: "toolbar" }, h("span", {}, unread.length ? unreadCount(this.#locale, unread.length) : this.#w("list.all_read")));
    if (unread.length && client) {
      const markAll = h("button", { type: "button", "data-key": "mark-all" }, this.#w("list.mark_all"));
      markAll.addEventListener("click", () => void this.#markTab(client, unread));
      toolbar.append(markAll);
    }
    panel.append(toolbar);
    if (items.length === 0) {
      panel.append(h("div", { class: "empty" }, h("p", {}, this.#w(`empty.${this.#tab}`)), h("p", {}, this.#w("empty.hint"))));
      return panel;
    }
    const list = h("ul", {});
    for (const item of items.slice(0, 100)) list.append(this.#itemRow(client!, item));
    panel.append(list);
    return panel;
  }

  #itemRow(client: TocsinClient, item: InboxItem): HTMLElement {
    const n = item.notification;
    const classes = ["item", item.read ? "" : "unread", n.urgency === "critical" ? "critical" : ""].filter(Boolean).join(" ");
    const actions = h("span", { class: "actions" });
    const href = safeLink(n.url);
    if (href) actions.append(h("a", { href, target: "_blank", rel: "noopener noreferrer", "aria-label": this.#w("item.open_named", { title: n.title }), "data-key": `open-${n.id}` }, this.#w("item.open")));
    const ack = this.#acknowledgement(client, item);
    if (ack) actions.append(ack);
    if (!item.read) {
      const mark = h("button", { type: "button", "aria-label": this.#w("item.mark_read_named", { title: n.title }), "data-key": `read-${n.id}` }, this.#w("item.mark_read"));
      mark.addEventListener("click", () => void client.markRead([n.id]));
      actions.append(mark);
    }
    const urgency = n.urgency === "critical" || n.urgency === "high" ? h("span", {}, this.#w(`urgency.${n.urgency}`)) : undefined;
    return h(
      "li",
      { class: classes, part: "item", "data-id": n.id },
      item.read ? undefined : h("span", { class: "sr-only" }, `${this.#w("item.unread_sr")} : `),
      h("div", { class: "title" }, n.title),
      n.body ? h("div", { class: "body" }, n.body) : undefined,
      h("div", { class: "meta" }, h("time", { datetime: n.created_at }, this.#dateTime(n.created_at)), urgency, actions),
    );
  }

  /**
   * A deadline alert's "Pris en compte": who took the deadline in and when, or the
   * button (distinct from read: it stops the escalation, for the whole firm).
   */
  #acknowledgement(client: TocsinClient, item: InboxItem): HTMLElement | undefined {
    const n = item.notification;
    if (n.kind !== "deadline-alert") return undefined;
    const deadlineId = (n.data as { deadline_id: string }).deadline_id;
    const done = client.acknowledgement(deadlineId);
    if (done) {
      this.#acknowledging.delete(deadlineId);
      const who = done.user_name ?? this.#w("ack.someone");
      return h("span", { class: "ack" }, this.#w("ack.by", { who, time: this.#clock(Date.parse(done.at)) }));
    }
    if (this.#acknowledging.has(deadlineId)) return h("span", { class: "ack" }, this.#w("ack.sending"));
    const button = h("button", { type: "button", "aria-label": this.#w("ack.button_named", { title: n.title }), "data-key": `ack-${n.id}` }, this.#w("ack.button"));
    button.addEventListener("click", () => {
      this.#acknowledging.add(deadlineId);
      this.#render();
      void client.acknowledge([n.id]);
    });
    return button;
  }

  #items(client: TocsinClient | undefined, tab: Tab): InboxItem[] {
    if (!client) return [];
    if (tab !== "system") return client.notifications({ kind: kindsOf(tab) });
    return client.notifications().filter((item) => tabOf(item.notification.kind) === "system");
  }

  /** Mark all read for a tab: by kind for the kinds the gateway knows, by id for the others. */
  async #markTab(client: TocsinClient, unread: InboxItem[]): Promise<void> {
    const known = new Set(kindsOf(this.#tab));
    for (const kind of known) if (unread.some((item) => item.notification.kind === kind)) await client.markAllRead(kind);
    const others = unread.filter((item) => !known.has(item.notification.kind)).map((item) => item.notification.id);
    if (others.length) await client.markRead(others);
  }

  #keydown(event: KeyboardEvent): void {
    if (event.key === "Escape") {
      event.preventDefault();
      this.close();
      return;
    }
    const target = event.target as HTMLElement;
    if (target.getAttribute("role") !== "tab") return;
    const index = TABS.indexOf(this.#tab);
    const next = tabKeyTarget(event.key, index, TABS.length);
    if (next === null) return;
    event.preventDefault();
    this.#tab = TABS[next]!;
    this.#render();
    this.#panel.querySelector<HTMLElement>(`#tab-${this.#tab}`)?.focus();
  }

  #clock(ms: number): string {
    return new Intl.DateTimeFormat(this.#locale, { hour: "2-digit", minute: "2-digit" }).format(ms);
  }

  #dateTime(iso: string): string {
    return new Intl.DateTimeFormat(this.#locale, { dateStyle: "short", timeStyle: "short" }).format(new Date(iso));
  }
}
