/**
 * The seed's conversation page, on Tocsin: a conversation's messages, a toast per
 * recent appointment proposal with Accept / Reject and its result, who is typing, and
 * the firm's presence. Built by `npm run build` into examples/build/conversation.js
 * (React bundled in); `cargo xtask demo` serves it against the demo gateway.
 */

import { useState } from "react";
import { createRoot } from "react-dom/client";

import { TocsinClient, type Presence } from "../src/index.js";
import { TocsinProvider, useNotifications, usePresence, useProposals, useTocsin, useTyping } from "../src/react/index.js";

interface Config {
  gateway: string;
  token: string;
  scope?: string;
  conversation: string;
  /** User ids to names, for the presence line and the typing indicator. */
  people?: Record<string, string>;
}

const STATUS_WORDS = { connected: "En direct", connecting: "Connexion…", offline: "Déconnecté", stopped: "Arrêté", idle: "…" };

function Conversation({ config }: { config: Config }) {
  const { status, user, offlineSince } = useTocsin();
  const stream = user ? `conversation:${user.tenant}:${config.conversation}` : "";
  const { items } = useNotifications({ kind: "conversation-message", stream });
  const { proposals, accept, reject } = useProposals(config.conversation);
  const { typists, typed, stopped } = useTyping(config.conversation);
  const { presence, setPresence } = usePresence();
  const [mine, setMine] = useState<Presence>("online");
  const name = (id: string) => config.people?.[id] ?? id;
  const messages = [...items].reverse();
  return (
    <div className="app">
      <div className="top">
        <h1>Dossier 2026-0142 — conversation</h1>
        <span className={`status ${status}`} data-testid="status">
          {STATUS_WORDS[status]}
          {status !== "connected" && offlineSince ? ` depuis ${new Date(offlineSince).toLocaleTimeString("fr-FR")}` : ""}
          {user ? ` — ${user.tenant_name ?? user.tenant}` : ""}
        </span>
        <select
          aria-label="Ma présence"
          value={mine}
          onChange={(e) => {
            const value = e.target.value as Presence;
            setMine(value);
            setPresence(value);
          }}
        >
          <option value="online">Disponible</option>
          <option value="away">Absent</option>
          <option value="busy">Occupé</option>
        </select>
      </div>
      <div className="members" data-testid="presence">
        {[...presence].map(([id, value]) => (
          <span key={id}>
            {name(id)} : {value}
          </span>
        ))}
      </div>
      <ul className="messages" data-testid="messages">
        {messages.map((item) => {
          const data = item.notification.data as { from: string; excerpt: string };
          return (
            <li key={item.notification.id}>
              <span className="from">{data.from}</span>
              {data.excerpt || item.notification.title}
            </li>
          );
        })}
      </ul>
      <div className="typing" aria-live="polite" data-testid="typing">
        {typists.length > 0 ? `${typists.map((t) => name(t.userId)).join(", ")} écrit…` : ""}
      </div>
      <div className="composer">
        <input aria-label="Votre message" placeholder="Écrire un message…" onInput={typed} onBlur={stopped} />
      </div>
      <div className="toasts" data-testid="proposals">
        {proposals.map((p) => {
          const data = p.item.notification.data as { starts_at: string; proposed_by: string; location?: string };
          return (
            <div className="toast" key={p.proposalId} role="status">
              <div className="title">{p.item.notification.title}</div>
              <div>
                {new Date(data.starts_at).toLocaleString("fr-FR", { dateStyle: "short", timeStyle: "short" })} — {data.proposed_by}
                {data.location ? `, ${data.location}` : ""}
              </div>
              {p.status === "pending" && p.answer?.state !== "done" ? (
                <div className="actions">
                  <button onClick={() => void accept(p.proposalId)} disabled={p.answer?.state === "sending"}>
                    Accepter
                  </button>
                  <button onClick={() => void reject(p.proposalId)} disabled={p.answer?.state === "sending"}>
                    Refuser
                  </button>
                </div>
              ) : (
                <div>{p.answer?.state === "failed" ? "" : `Réponse : ${p.status === "pending" ? p.answer?.response : p.status}`}</div>
              )}
              {p.answer?.state === "failed" ? <div className="error">{p.answer.error?.message}</div> : null}
            </div>
          );
        })}
      </div>
    </div>
  );
}

const config = (await (await fetch("./config.json")).json()) as Config;
const client = new TocsinClient({
  url: config.gateway,
  ...(config.scope ? { scope: config.scope } : {}),
  getToken: async (reason) => {
    const response = await fetch(`${config.token}?reason=${reason}`);
    if (!response.ok) throw new Error(`the token endpoint answered ${response.status}`);
    return ((await response.json()) as { token: string }).token;
  },
}).start();
(window as unknown as { tocsin: TocsinClient }).tocsin = client;
createRoot(document.getElementById("root")!).render(
  <TocsinProvider client={client}>
    <Conversation config={config} />
  </TocsinProvider>,
);
