//! Tocsin gateway end-to-end tests: each test starts its own `tocsin-gateway` process
//! (real SQLite file, real sockets on 127.0.0.1) and talks to it as clients and
//! publishers would. The harness lives in the `tocsin_e2e` library.

mod acknowledge; // Acknowledged is not read: one device's acknowledgement clears the other's mark; offline, it reaches the gateway once.
mod audit; // The proof: a dossier's audit trail lists publish, delivery per device, read and acknowledgement with times; admin keys only; CSV export.
mod backup; // backup under continuous publishing (consistent, publishes stay fast), restore refused while serving, old files kept aside, clients rebuild exactly when the backup is an older history; doctor; a database of the previous schema opens and migrates.
mod browser_notifications; // Web notifications from Chromium in a private X/D-Bus session reach org.freedesktop.Notifications (urgency, timeout, the default action); the server's click fires onclick, the page's close() closes it.
mod browser_smoke; // A real headless Chromium: a page on an allowed origin fetches history with a bearer token and opens a tocsin.v1 WebSocket to welcome; another origin's fetch is rejected by CORS and its WebSocket refused; the page server's modules run.
mod calendar; // A user's calendar feed read by Python's icalendar: own open deadlines, one alarm per reminder; rotate, revoke, cancel.
mod client_engine; // The real client engine rides out SIGKILL, black holes and sleep; offline actions, catch-up.
mod client_tokens; // A renewed token the keyring could not save, a lost refresh answer: the device stays signed in.
mod cluster; // Three nodes on one real PostgreSQL database: a publish on one node reaches devices on the others once and in order, read sync and a disabled user's sockets cross nodes, and a node SIGKILLed under a steady publisher loses nothing (its client resumes on another node with exactly the acknowledged set); PostgreSQL restarted under a steady publisher: 503 while down, every node ready again, devices on other nodes end with exactly the acknowledged set.
mod cluster_haproxy; // Three nodes behind Debian's HAProxy as OPERATIONS.md configures it, the real client engine and a publisher knowing only HAProxy's address: the client's node SIGKILLed, or drained with SIGTERM, under a steady publisher; the client comes back on another node with exactly the acknowledged set.
mod cluster_soak; // Seeded chaos on three PostgreSQL nodes: publishers retrying through live nodes, devices resuming on another node, random SIGKILLs and restarts; each device ends with exactly the acknowledged set, in order.
mod deadlines; // Deadlines the gateway owns: reminders in order and rising, re-planned, cancelled, exactly once across SIGKILL and downtime; escalation; scheduled publishes.
mod desktop_deadlines; // The Deadlines tab: one row per deadline, escalations say whose; Acknowledge from the panel or the critical toast reaches the gateway and clears the tray's mark; the ICS link.
mod desktop_keyring; // The token in gnome-keyring (secret-tool finds it), resumed after a restart, cleared by sign-out.
mod desktop_notifications; // OS notifications: urgency, timeout, actions (mark read reaches the gateway), no server, dunst.
mod desktop_panel; // The panel over WebDriver: sign-in, tabs, mark read, proposals, offline and recovery, screenshots.
mod desktop_pinning; // The panel's sign-in to a self-signed gateway: the fingerprint init printed is shown, cancel or trust, the pin kept across a restart.
mod desktop_tray; // The tray over D-Bus: count label and icon, offline look, menu in both languages, mark all read.
mod disk_full; // A full disk refuses publishes with a clear 503, loses nothing, and recovers.
mod durability; // Acknowledged publishes survive SIGKILL and replay exactly once, in order.
mod external_jwt; // External-app JWTs: every malformed or forged token is refused; a good one works.
mod forward_compat; // Kinds and fields this build does not know: kept, served, shown; deep links checked.
mod hardening; // Small holes closed: history offsets past i64, emails differing by non-ASCII case.
mod heartbeat; // Peers that stop answering pings are dropped; peers that read stay connected.
mod hostile_input; // Oversized and malformed frames close the offender only.
mod isolation; // One firm never sees, reads, publishes into or marks another firm's data.
mod limits; // Per-user connection cap, Origin allow-list, first-frame auth deadline.
mod login_throttling; // Login floods keep memory flat (503); guesses get 429 per address and account, never locking the owner out.
mod membership; // Members added to or removed from a conversation while connected: effective at once.
mod metrics; // /metrics during a scenario: each counter moved by what happened, promtool accepts it; the token guards it, the private address does not need it; the documented alert rules pass promtool.
mod offline_actions; // Offline actions keep their promise: mark-all-read covers what was seen; long queues are paced, never dropped.
mod openapi; // /v1/openapi.json is OpenAPI 3.1, what the CLI prints, and every operation in it is served; schemathesis against a live gateway finds no 5xx and no undocumented answer.
mod ops_guide; // docs/OPERATIONS.md's Debian VPS guide run as written against the real binary (shims for sudo, apt, certbot, systemctl): TLS readyz, a publish, metrics, a nightly backup that restores, doctor, the unit verified.
mod packages; // The Debian packages: contents, sizes (server < 15 MB), stripped with a matching dbgsym, lintian clean; the gateway package installed with dpkg in a throwaway overlay root, started, upgraded (graceful restart, data kept), removed (data kept), purged (data gone).
mod postgres_node; // One gateway on a real PostgreSQL server: live delivery, SIGKILL and replay exactly once; PostgreSQL killed under the gateway is a clear 503 and readiness 503, then both recover by themselves; a link gone silent mid-batch gets every publish in flight a 503, not a 500.
mod publish_api; // Idempotency, batches, history paging, unread counts, refused kinds.
mod publish_cli; // `tocsin-gateway publish` from a script: reaches the desktop through the running gateway (config's address, HTTPS with its own pair, or --gateway); a wrong key or bad --data exits 1 with the reason.
mod read_sync; // Read state and proposal answers are synced across a user's connections.
mod replay; // Reconnecting replays exactly what was missed, then goes live without a gap.
mod retraction; // A firm retracts a misdirected notification: devices drop it, history forgets it.
mod service_unit; // The systemd unit: `systemd-analyze verify` accepts it, `systemd-analyze security` scores it confined (≤ 2.0).
mod sessions; // In-band refresh outlives the old token; sign-out and token reuse close the device.
mod shutdown; // SIGTERM closes every client with 4000 and exits 0.
mod slow_consumer; // A client that stops reading is cut off alone and resumes without loss.
mod soak; // A seeded random schedule of SIGKILLs, black holes and actions of every kind: nothing lost, applied once, unread agrees.
mod store_integrity; // An older copy restored, the WAL deleted, a damaged file, a held lock: refused clearly, nothing lost.
mod terminal_client; // `tocsin listen` killed and restarted resumes from its persisted positions.
mod tls; // Built-in TLS: HTTPS and WSS, TLS 1.2/1.3 only (openssl, testssl), plain HTTP told to use https, certificate reload under open WebSockets, expiry.
mod tls_pinning; // A self-signed gateway pinned by the fingerprint init printed: the real client signs in and receives over WSS; no pin shows the fingerprint, a wrong or replaced certificate is refused as changed.
mod user_governance; // Users who leave: disabled (every socket closed at once with 4101), enabled, erased with the audit trail kept anonymised; admin keys only; the CLI on a stopped gateway, deferring to the API while one serves.
mod web_cors; // CORS for a firm's web app on another origin: an allowed origin's preflight and history read get the headers, another origin's preflight is refused 403 (the setting named) and counted; publish and admin routes never answer CORS.
mod web_sdk; // The web SDK (sdk/web, built) in Chromium against the real gateway: live delivery to the bell, a SIGKILL under a steady publisher leaves exactly the acknowledged set (kept in IndexedDB across a reload), two tabs share one socket and hand it over without loss, an offline action applied once, typing and presence between two members' pages, a critical deadline's browser notification.
mod webhooks; // Signed receipts from a durable outbox: a receiver down, then slow, then up gets every event at least once, across a restart.
