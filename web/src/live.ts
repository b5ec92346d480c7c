// The live channel to warden-ws (docs/websocket.md): console history then live
// lines, install output, state, stats. Reconnects with back-off, re-authenticates
// in-band before the token expires, drops duplicate lines by seq.
import { ApiError, type Stats, type WsTicket } from "./api";

export type LinkStatus = "connecting" | "connected" | "reconnecting" | "denied" | "closed";

export interface LiveHandlers {
  onLink?(status: LinkStatus, detail?: string): void;
  onState?(state: string, extra: { previous?: string; reason?: string; installed?: boolean }): void;
  onConsole?(lines: string[], source?: string): void;
  onInstall?(lines: string[]): void;
  onStats?(stats: Stats): void;
  onError?(code: string, message: string, cause?: string): void;
  onPermissions?(perms: string[]): void;
}

export interface LiveOptions {
  WebSocketImpl?: typeof WebSocket;
  /** back-off in ms for attempt n (0-based) */
  backoff?: (attempt: number) => number;
  location?: { protocol: string; host: string };
}

interface Msg {
  event?: unknown;
  args?: unknown;
  seq?: unknown;
  dropped?: unknown;
  source?: unknown;
  previous?: unknown;
  reason?: unknown;
  installed?: unknown;
}

export function defaultBackoff(attempt: number): number {
  const base = Math.min(15_000, 500 * 2 ** attempt);
  return base / 2 + Math.random() * (base / 2);
}

/** Absolute ws(s):// URL from what the API returned (absolute, or a path on this origin). */
export function resolveWsUrl(url: string, loc: { protocol: string; host: string }): string {
  if (/^wss?:\/\//i.test(url)) {
    // A page served over https cannot open ws://; upgrade to wss.
    if (loc.protocol === "https:" && url.startsWith("ws://")) return "wss://" + url.slice(5);
    return url;
  }
  if (/^https?:\/\//i.test(url)) return url.replace(/^http/i, "ws");
  const proto = loc.protocol === "https:" ? "wss:" : "ws:";
  return `${proto}//${loc.host}${url.startsWith("/") ? "" : "/"}${url}`;
}

export class LiveSocket {
  private ws: WebSocket | null = null;
  private stopped = false;
  private attempt = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private seenConsole = new Set<number>();
  private seenInstall = new Set<number>();
  private authedOnce = false; // on this socket
  private readonly WS: typeof WebSocket;
  private readonly backoff: (n: number) => number;
  private readonly loc: { protocol: string; host: string };
  status: LinkStatus = "connecting";

  constructor(
    private readonly fetchTicket: () => Promise<WsTicket>,
    private readonly h: LiveHandlers,
    opts: LiveOptions = {},
  ) {
    this.WS = opts.WebSocketImpl ?? WebSocket;
    this.backoff = opts.backoff ?? defaultBackoff;
    this.loc = opts.location ?? window.location;
  }

  start() {
    this.stopped = false;
    void this.connect();
  }

  stop() {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onclose = null;
      ws.onmessage = null;
      ws.onerror = null;
      ws.onopen = null;
      try {
        ws.close(1000, "bye");
      } catch {
        /* ignore */
      }
    }
    this.setLink("closed");
  }

  get connected(): boolean {
    return this.status === "connected";
  }

  /** Send one event; false when the socket is not ready. */
  send(event: string, args: unknown[] = []): boolean {
    if (!this.ws || this.ws.readyState !== 1 || this.status !== "connected") return false;
    this.ws.send(JSON.stringify({ event, args }));
    return true;
  }

  private setLink(s: LinkStatus, detail?: string) {
    this.status = s;
    this.h.onLink?.(s, detail);
  }

  private async connect() {
    if (this.stopped) return;
    this.setLink(this.attempt === 0 ? "connecting" : "reconnecting");
    let ticket: WsTicket;
    try {
      ticket = await this.fetchTicket();
    } catch (e) {
      if (this.stopped) return;
      if (e instanceof ApiError && (e.status === 401 || e.status === 403 || e.status === 404)) {
        this.setLink("denied", e.message);
        return;
      }
      this.scheduleReconnect();
      return;
    }
    if (this.stopped) return;
    this.h.onPermissions?.(ticket.permissions ?? []);
    let ws: WebSocket;
    try {
      ws = new this.WS(resolveWsUrl(ticket.url, this.loc));
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    this.authedOnce = false;
    ws.onopen = () => ws.send(JSON.stringify({ event: "auth", args: [ticket.token] }));
    ws.onmessage = (ev: MessageEvent) => this.onMessage(ev.data);
    ws.onerror = () => {
      /* onclose follows */
    };
    ws.onclose = (ev: CloseEvent) => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (this.stopped) return;
      if (ev.code === 4001) {
        this.setLink("denied", ev.reason || "The live console refused this session");
        return;
      }
      this.scheduleReconnect();
    };
  }

  private scheduleReconnect() {
    if (this.stopped) return;
    const delay = this.backoff(this.attempt);
    this.attempt++;
    this.setLink("reconnecting");
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.connect();
    }, delay);
  }

  private async reauth() {
    try {
      const t = await this.fetchTicket();
      this.h.onPermissions?.(t.permissions ?? []);
      if (this.ws && this.ws.readyState === 1) this.ws.send(JSON.stringify({ event: "auth", args: [t.token] }));
    } catch {
      /* the socket will close at expiry and we reconnect */
    }
  }

  /** Lines of a console/install message not seen yet, by seq (history may repeat live lines, a reconnect repeats history). */
  private fresh(kind: "console" | "install", lines: string[], seq: unknown): string[] {
    if (typeof seq !== "number") return lines; // system notices carry no seq
    const seen = kind === "console" ? this.seenConsole : this.seenInstall;
    const out: string[] = [];
    lines.forEach((l, i) => {
      const n = seq + i;
      if (seen.has(n)) return;
      seen.add(n);
      out.push(l);
    });
    if (seen.size > 20_000) {
      // keep the newest half
      const keep = [...seen].sort((a, b) => a - b).slice(-10_000);
      seen.clear();
      for (const k of keep) seen.add(k);
    }
    return out;
  }

  private onMessage(data: unknown) {
    if (typeof data !== "string") return;
    let m: Msg;
    try {
      m = JSON.parse(data) as Msg;
    } catch {
      return;
    }
    const args = Array.isArray(m.args) ? (m.args as unknown[]) : [];
    const strs = () => args.filter((a): a is string => typeof a === "string");
    switch (m.event) {
      case "auth success":
        if (!this.authedOnce) {
          this.authedOnce = true;
          this.attempt = 0;
          this.setLink("connected");
          this.ws?.send(JSON.stringify({ event: "send logs", args: [] }));
          this.ws?.send(JSON.stringify({ event: "send stats", args: [] }));
        }
        break;
      case "status": {
        const s = args[0];
        if (typeof s === "string")
          this.h.onState?.(s, {
            previous: typeof m.previous === "string" ? m.previous : undefined,
            reason: typeof m.reason === "string" ? m.reason : undefined,
            installed: typeof m.installed === "boolean" ? m.installed : undefined,
          });
        break;
      }
      case "console output": {
        const lines = this.fresh("console", strs(), m.seq);
        if (typeof m.dropped === "number" && m.dropped > 0) lines.unshift(`[${m.dropped} lines dropped]`);
        if (lines.length) this.h.onConsole?.(lines, typeof m.source === "string" ? m.source : undefined);
        break;
      }
      case "install output": {
        const lines = this.fresh("install", strs(), m.seq);
        if (lines.length) this.h.onInstall?.(lines);
        break;
      }
      case "stats": {
        const s = args[0];
        if (s && typeof s === "object") this.h.onStats?.(s as Stats);
        break;
      }
      case "token expiring":
        void this.reauth();
        break;
      case "token expired":
        // The gateway closes with 4004 next; onclose reconnects with a fresh token.
        break;
      case "error": {
        const [code, message, cause] = args;
        const c = typeof code === "string" ? code : "error";
        if (c === "token_expired" || c === "auth_failed") {
          if (!this.authedOnce) {
            // A stale token: reconnect with a fresh one (back-off applies).
            this.ws?.close(4000, "reauth");
            return;
          }
        }
        this.h.onError?.(c, typeof message === "string" ? message : c, typeof cause === "string" ? cause : undefined);
        break;
      }
      default:
        break;
    }
  }
}
