/**
 * `@tocsin/web`: Tocsin's browser client. Start here: {@link TocsinClient}.
 */

export { TocsinClient, VERSION, type TocsinClientOptions, type TocsinEvents } from "./client.js";
export type { TokenReason, ItemSource } from "./engine.js";
export type { StopReason } from "./close.js";
export { MemoryStorage, type TocsinStorage, type Commit, type Snapshot } from "./storage.js";
export { IndexedDbStorage } from "./indexeddb.js";
export type { ListFilter } from "./inbox.js";
export type * from "./types.js";
export type * from "./protocol/index.js";
