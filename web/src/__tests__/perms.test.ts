import { describe, expect, it } from "vitest";
import { can, grants, powerButton } from "../perms";

describe("grants", () => {
  it("matches exact, group wildcard and *", () => {
    expect(grants(["control.start"], "control.start")).toBe(true);
    expect(grants(["control.*"], "control.kill")).toBe(true);
    expect(grants(["*"], "anything.here")).toBe(true);
    expect(grants(["control.stop"], "control.start")).toBe(false);
    expect(grants(["file.*"], "control.start")).toBe(false);
  });
  it("treats unknown permissions as allowed and admins as allowed", () => {
    expect(can(undefined, "control.start")).toBe(true);
    expect(can([], "control.start", true)).toBe(true);
    expect(can([], "control.start")).toBe(false);
  });
});

describe("powerButton", () => {
  const all = ["control.*"];
  it("enables start only when offline/crashed", () => {
    expect(powerButton("start", { state: "offline", permissions: all }).enabled).toBe(true);
    expect(powerButton("start", { state: "crashed", permissions: all }).enabled).toBe(true);
    const r = powerButton("start", { state: "running", permissions: all });
    expect(r.enabled).toBe(false);
    expect(r.reason).toMatch(/already running/);
  });
  it("enables stop/restart/kill while running", () => {
    for (const a of ["stop", "restart", "kill"] as const) expect(powerButton(a, { state: "running", permissions: all }).enabled).toBe(true);
    expect(powerButton("stop", { state: "offline", permissions: all }).enabled).toBe(false);
    expect(powerButton("kill", { state: "stopping", permissions: all }).enabled).toBe(true);
  });
  it("disables with a permission reason, not by hiding", () => {
    const r = powerButton("start", { state: "offline", permissions: ["control.stop"] });
    expect(r.enabled).toBe(false);
    expect(r.reason).toContain("control.start");
  });
  it("is not pressable while the permissions are still loading (admins excepted)", () => {
    // Not known yet (the server is loading): not pressable, and it says why.
    expect(powerButton("start", { state: "offline", permissions: undefined })).toEqual({
      enabled: false,
      reason: "Checking your permissions…",
    });
    expect(powerButton("start", { state: "offline", permissions: undefined, isAdmin: true }).enabled).toBe(true);
  });
  it("disables everything while installing or suspended, and start before install", () => {
    expect(powerButton("start", { state: "installing", permissions: all }).reason).toMatch(/installing/);
    expect(powerButton("stop", { state: "running", permissions: all, suspended: true }).reason).toMatch(/suspended/);
    expect(powerButton("start", { state: "offline", permissions: all, installed: false }).reason).toMatch(/Install/);
  });
  it("disables while an action is pending", () => {
    expect(powerButton("stop", { state: "running", permissions: all, pending: "stop" }).enabled).toBe(false);
  });
});
