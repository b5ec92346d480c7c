// Permission and power-button logic, kept pure so it is easy to test.
import type { ServerState } from "./api";

/** Does a grant list allow `perm`? Exact, group wildcard ("control.*") or "*". */
export function grants(list: readonly string[], perm: string): boolean {
  const group = perm.split(".")[0] + ".*";
  return list.some((g) => g === "*" || g === perm || g === group);
}

/**
 * undefined permissions = unknown (an older API): allow and let the API decide.
 * Admins pass every check.
 */
export function can(perms: readonly string[] | undefined, perm: string, isAdmin = false): boolean {
  if (isAdmin || perms === undefined) return true;
  return grants(perms, perm);
}

export type PowerAction = "start" | "stop" | "restart" | "kill";
export const POWER_ACTIONS: PowerAction[] = ["start", "stop", "restart", "kill"];

export interface ButtonState {
  enabled: boolean;
  reason?: string; // why it is disabled (tooltip)
}

const allowedIn: Record<PowerAction, ServerState[]> = {
  start: ["offline", "crashed", "unknown"],
  stop: ["starting", "running"],
  restart: ["running", "crashed", "starting"],
  kill: ["starting", "running", "stopping"],
};

const stateReason: Record<PowerAction, string> = {
  start: "The server is already ",
  stop: "Nothing to stop: the server is ",
  restart: "Cannot restart while ",
  kill: "Nothing to kill: the server is ",
};

export interface PowerContext {
  state: string | undefined;
  permissions: readonly string[] | undefined;
  isAdmin?: boolean;
  installed?: boolean;
  suspended?: boolean;
  connected?: boolean; // the API path works without the socket, so this is informational only
  pending?: PowerAction | null;
}

export function powerButton(action: PowerAction, ctx: PowerContext): ButtonState {
  // Until the server (and with it the caller's permissions) has loaded, a
  // button must not look usable: it might be one the user may not press.
  if (ctx.permissions === undefined && !ctx.isAdmin) {
    return { enabled: false, reason: "Checking your permissions…" };
  }
  if (!can(ctx.permissions, "control." + action, ctx.isAdmin)) {
    return { enabled: false, reason: `You do not have permission to ${action} this server (needs control.${action})` };
  }
  if (ctx.suspended) return { enabled: false, reason: "The server is suspended" };
  const state = (ctx.state ?? "unknown") as ServerState;
  if (state === "installing") return { enabled: false, reason: "The server is installing" };
  if (action === "start" && ctx.installed === false) {
    return { enabled: false, reason: "Install the server first" };
  }
  if (ctx.pending) return { enabled: false, reason: `Waiting for ${ctx.pending} to be accepted` };
  if (!allowedIn[action].includes(state)) {
    return { enabled: false, reason: stateReason[action] + state };
  }
  return { enabled: true };
}
