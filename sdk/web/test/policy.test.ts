import { describe, expect, it } from "vitest";

import { Backoff } from "../src/backoff.js";
import { decideClose } from "../src/close.js";

describe("backoff", () => {
  it("draws from [0, min(cap, base × 2^attempt)) and resets", () => {
    const top = new Backoff(() => 0.999999);
    const ceilings = Array.from({ length: 9 }, () => top.next());
    expect(ceilings).toEqual([999, 1999, 3999, 7999, 15999, 31999, 59999, 59999, 59999]);
    top.reset();
    expect(top.next()).toBe(999);
    expect(new Backoff(() => 0).next()).toBe(0);
  });
});

describe("close codes", () => {
  it.each([
    [4000, { action: "reconnect" }],
    [4001, { action: "reconnect" }],
    [4004, { action: "reconnect" }],
    [4005, { action: "reconnect" }],
    [4077, { action: "reconnect" }], // unknown, reconnect range
    [1001, { action: "reconnect" }],
    [1006, { action: "reconnect" }],
    [1012, { action: "reconnect" }],
    [4002, { action: "refresh" }],
    [4100, { action: "reject_token" }],
    [4101, { action: "stop", reason: "forbidden" }],
    [4104, { action: "stop", reason: "too_many_connections" }],
    [4102, { action: "stop", reason: "client_error" }],
    [4103, { action: "stop", reason: "client_error" }],
    [4105, { action: "stop", reason: "client_error" }],
    [4150, { action: "stop", reason: "client_error" }], // unknown, stop range
    [1007, { action: "stop", reason: "client_error" }],
    [1000, { action: "stop", reason: "closed" }],
  ])("%i → %o", (code, decision) => {
    expect(decideClose(code, "")).toEqual(decision);
  });

  it("4003 waits what its reason says", () => {
    expect(decideClose(4003, "retry_after_ms=7500")).toEqual({ action: "wait", ms: 7500 });
    expect(decideClose(4003, "rate_limited")).toEqual({ action: "wait", ms: 2000 });
  });
});
