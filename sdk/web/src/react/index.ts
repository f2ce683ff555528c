/**
 * React bindings (`@tocsin/web/react`): a provider for one {@link TocsinClient} and
 * hooks that re-render on its events. Each hook subscribes with
 * `useSyncExternalStore` to a version counter bumped by the events it depends on, and
 * recomputes its value from the client only when that version moves.
 */

import { createContext, createElement, useCallback, useContext, useEffect, useMemo, useRef, useState, useSyncExternalStore, type ReactNode } from "react";

import type { TocsinClient, TocsinEvents } from "../client.js";
import type { ListFilter } from "../inbox.js";
import type { Presence, ProposalResponse } from "../protocol/index.js";
import type { ActionResult, ConnectionState, InboxItem, ProposalView, Typist } from "../types.js";

const ClientContext = createContext<TocsinClient | undefined>(undefined);

/** Makes `client` available to the hooks below it. The app creates and starts the client. */
export function TocsinProvider(props: { client: TocsinClient; children?: ReactNode }): ReactNode {
  return createElement(ClientContext.Provider, { value: props.client }, props.children);
}

/** The client of the nearest {@link TocsinProvider}. */
export function useTocsinClient(): TocsinClient {
  const client = useContext(ClientContext);
  if (!client) throw new Error("useTocsin…() needs a <TocsinProvider client={…}> above it");
  return client;
}

/** A counter bumped by the named events: the snapshot `useSyncExternalStore` compares. */
function useVersion(client: TocsinClient, names: ReadonlyArray<keyof TocsinEvents>): number {
  const version = useRef(0);
  const subscribe = useCallback(
    (onChange: () => void) => {
      const offs = names.map((name) =>
        client.on(name, () => {
          version.current += 1;
          onChange();
        }),
      );
      return () => offs.forEach((off) => off());
    },
    // The names are constants at each call site.
    [client],
  );
  return useSyncExternalStore(subscribe, () => version.current, () => 0);
}

/** The connection, as a status line shows it: connected, connecting, offline since…, stopped and why. */
export function useTocsin(): ConnectionState & { connected: boolean; role: TocsinClient["role"]; reconnect: () => void } {
  const client = useTocsinClient();
  const version = useVersion(client, ["state"]);
  return useMemo(() => {
    const state = client.state;
    return { ...state, connected: state.status === "connected", role: client.role, reconnect: () => client.reconnect() };
  }, [client, version]);
}

/** The inbox (newest first), filtered by kind and/or stream, with the read actions. */
export function useNotifications(filter: ListFilter = {}): {
  items: InboxItem[];
  markRead: (ids: readonly string[]) => Promise<void>;
  markAllRead: () => Promise<void>;
} {
  const client = useTocsinClient();
  const version = useVersion(client, ["change", "read", "retracted"]);
  const kinds = filter.kind === undefined ? "" : typeof filter.kind === "string" ? filter.kind : filter.kind.join(",");
  const items = useMemo(
    () => client.notifications(filter),
    [client, version, kinds, filter.stream, filter.unreadOnly],
  );
  const kind = typeof filter.kind === "string" ? filter.kind : undefined;
  return {
    items,
    markRead: useCallback((ids: readonly string[]) => client.markRead(ids), [client]),
    markAllRead: useCallback(() => client.markAllRead(kind), [client, kind]),
  };
}

/** Unread counts: the badge. */
export function useUnread(): { total: number; byKind: Record<string, number> } {
  const client = useTocsinClient();
  const version = useVersion(client, ["change", "read", "retracted"]);
  return useMemo(() => client.unread(), [client, version]);
}

/** How many proposals a conversation's toasts show at most, and for how long. */
export const RECENT_PROPOSALS = 5;
export const PROPOSAL_TTL_MS = 60 * 60 * 1000;

/**
 * A conversation's recent proposals — at most 5, each cleared an hour after it was
 * made, as the seed's `useProposalNotifications` did — with accept/reject and the
 * answer's fate (`answer.state`: sending, done, failed with the gateway's reason).
 */
export function useProposals(conversationId: string): {
  proposals: ProposalView[];
  accept: (proposalId: string) => Promise<string>;
  reject: (proposalId: string) => Promise<string>;
  lastResult?: ActionResult;
} {
  const client = useTocsinClient();
  const version = useVersion(client, ["change", "action"]);
  const [now, setNow] = useState(() => Date.now());
  const [lastResult, setLastResult] = useState<ActionResult>();
  useEffect(() => client.on("action", (r) => r.type === "proposal_respond" && setLastResult(r)), [client]);
  const proposals = useMemo(
    () => client.proposals(conversationId).filter((p) => Date.parse(p.item.notification.created_at) + PROPOSAL_TTL_MS > now).slice(0, RECENT_PROPOSALS),
    [client, conversationId, version, now],
  );
  // Re-render when the oldest shown proposal reaches its hour.
  useEffect(() => {
    if (proposals.length === 0) return;
    const expiry = Math.min(...proposals.map((p) => Date.parse(p.item.notification.created_at) + PROPOSAL_TTL_MS));
    const timer = setTimeout(() => setNow(Date.now()), Math.max(0, expiry - Date.now()) + 1);
    return () => clearTimeout(timer);
  }, [proposals]);
  const answer = useCallback((response: ProposalResponse) => (proposalId: string) => client.respond(proposalId, response), [client]);
  return {
    proposals,
    accept: useMemo(() => answer("accept"), [answer]),
    reject: useMemo(() => answer("reject"), [answer]),
    ...(lastResult ? { lastResult } : {}),
  };
}

/** How often "still typing" is repeated while the user types, and when it lapses. */
const TYPING_REPEAT_MS = 3_000;
const TYPING_IDLE_MS = 5_000;

/**
 * Who else is typing in a conversation, and `typed()` to call on each keystroke: it
 * tells the others at most every 3 s, and that the user stopped after 5 s without
 * one (or at once with `stopped()`, e.g. when the message is sent).
 */
export function useTyping(conversationId: string): { typists: Typist[]; typed: () => void; stopped: () => void } {
  const client = useTocsinClient();
  const version = useVersion(client, ["typing", "state"]);
  const typists = useMemo(() => client.typists(conversationId), [client, conversationId, version]);
  const last = useRef(0);
  const idle = useRef<ReturnType<typeof setTimeout>>(undefined);
  const stopped = useCallback(() => {
    clearTimeout(idle.current);
    if (last.current !== 0) client.typing(conversationId, false);
    last.current = 0;
  }, [client, conversationId]);
  const typed = useCallback(() => {
    const now = Date.now();
    if (now - last.current >= TYPING_REPEAT_MS && client.typing(conversationId, true)) last.current = now;
    clearTimeout(idle.current);
    idle.current = setTimeout(stopped, TYPING_IDLE_MS);
  }, [client, conversationId, stopped]);
  useEffect(() => () => clearTimeout(idle.current), []);
  return { typists, typed, stopped };
}

/** The firm's members' presence as last announced, and the user's own setter. */
export function usePresence(): { presence: ReadonlyMap<string, Presence>; setPresence: (status: Presence) => boolean } {
  const client = useTocsinClient();
  const version = useVersion(client, ["presence"]);
  // A new Map each version, so React sees a change.
  const presence = useMemo(() => new Map(client.presence()), [client, version]);
  return { presence, setPresence: useCallback((status: Presence) => client.setPresence(status), [client]) };
}
