import { describe, expect, it, vi } from "vitest";
import { ApiError, type WsTicket } from "../api";
import { LiveSocket, resolveWsUrl, type LinkStatus } from "../live";

class FakeWS {
  static all: FakeWS[] = [];
  readyState = 0;
  sent: { event: string; args: unknown[] }[] = [];
  onopen: (() => void) | null = null;
  onmessage: ((e: { data: string }) => void) | null = null;
  onclose: ((e: { code: number; reason: string }) => void) | null = null;
  onerror: (() => void) | null = null;
  constructor(public url: string) {
    FakeWS.all.push(this);
  }
  send(s: string) {
    this.sent.push(JSON.parse(s) as { event: string; args: unknown[] });
  }
  close() {
    this.readyState = 3;
  }
  open() {
    this.readyState = 1;
    this.onopen?.();
  }
  recv(m: unknown) {
    this.onmessage?.({ data: JSON.stringify(m) });
  }
  drop(code = 1006) {
    this.readyState = 3;
    this.onclose?.({ code, reason: "" });
  }
}

const flush = () => new Promise((r) => setTimeout(r, 0));

function setup(ticket: () => Promise<WsTicket>) {
  FakeWS.all = [];
  const links: LinkStatus[] = [];
  const lines: string[] = [];
  const states: string[] = [];
  const errors: string[] = [];
  const s = new LiveSocket(
    ticket,
    {
      onLink: (l) => links.push(l),
      onConsole: (ls) => lines.push(...ls),
      onInstall: (ls) => lines.push(...ls.map((l) => "install:" + l)),
      onState: (st) => states.push(st),
      onError: (c) => errors.push(c),
    },
    { WebSocketImpl: FakeWS as unknown as typeof WebSocket, backoff: () => 0, location: { protocol: "http:", host: "panel:8080" } },
  );
  return { s, links, lines, states, errors };
}

let n = 0;
const ticket = async (): Promise<WsTicket> => ({ token: "tok" + ++n, url: "ws://127.0.0.1:8081/ws/srv", expires_at: 0, permissions: ["websocket.connect"] });

describe("LiveSocket", () => {
  it("authenticates, asks for history, de-duplicates lines by seq", async () => {
    const { s, links, lines, states } = setup(ticket);
    s.start();
    await flush();
    const ws = FakeWS.all[0] as FakeWS;
    expect(ws.url).toBe("ws://127.0.0.1:8081/ws/srv");
    ws.open();
    expect(ws.sent[0]?.event).toBe("auth");
    ws.recv({ event: "auth success", args: [] });
    expect(ws.sent.map((m) => m.event)).toContain("send logs");
    expect(links[links.length - 1]).toBe("connected");
    ws.recv({ event: "status", args: ["running"], previous: "starting" });
    ws.recv({ event: "console output", args: ["live 5"], seq: 5 });
    ws.recv({ event: "console output", args: ["h3", "h4", "live 5"], seq: 3 });
    ws.recv({ event: "console output", args: ["live 6"], seq: 6 });
    ws.recv({ event: "console output", args: ["[Warden] server crashed"], source: "system" });
    ws.recv({ event: "install output", args: ["step 1"], seq: 1 });
    expect(lines).toEqual(["live 5", "h3", "h4", "live 6", "[Warden] server crashed", "install:step 1"]);
    expect(states).toEqual(["running"]);
    expect(s.send("send command", ["say hi"])).toBe(true);
    expect(ws.sent[ws.sent.length - 1]).toEqual({ event: "send command", args: ["say hi"] });
  });

  it("re-authenticates in-band when the token is expiring", async () => {
    const { s } = setup(ticket);
    s.start();
    await flush();
    const ws = FakeWS.all[0] as FakeWS;
    ws.open();
    ws.recv({ event: "auth success", args: [] });
    const before = ws.sent.filter((m) => m.event === "auth").length;
    ws.recv({ event: "token expiring", args: ["60"] });
    await flush();
    await flush();
    const auths = ws.sent.filter((m) => m.event === "auth");
    expect(auths.length).toBe(before + 1);
    expect(FakeWS.all).toHaveLength(1);
  });

  it("reconnects after a drop, shows reconnecting, and does not repeat lines", async () => {
    const { s, links, lines } = setup(ticket);
    s.start();
    await flush();
    const ws1 = FakeWS.all[0] as FakeWS;
    ws1.open();
    ws1.recv({ event: "auth success", args: [] });
    ws1.recv({ event: "console output", args: ["a", "b"], seq: 1 });
    ws1.drop(1006);
    expect(links).toContain("reconnecting");
    await new Promise((r) => setTimeout(r, 5));
    await flush();
    const ws2 = FakeWS.all[1] as FakeWS;
    expect(ws2).toBeDefined();
    ws2.open();
    ws2.recv({ event: "auth success", args: [] });
    ws2.recv({ event: "console output", args: ["a", "b", "c"], seq: 1 });
    expect(lines).toEqual(["a", "b", "c"]);
    expect(links[links.length - 1]).toBe("connected");
    s.stop();
  });

  it("stops when the API refuses the ticket", async () => {
    const { s, links } = setup(async () => {
      throw new ApiError(403, "forbidden", "needs websocket.connect");
    });
    s.start();
    await flush();
    expect(links[links.length - 1]).toBe("denied");
    expect(FakeWS.all).toHaveLength(0);
  });

  it("reports gateway errors", async () => {
    const { s, errors } = setup(ticket);
    s.start();
    await flush();
    const ws = FakeWS.all[0] as FakeWS;
    ws.open();
    ws.recv({ event: "auth success", args: [] });
    ws.recv({ event: "error", args: ["permission_denied", "kill needs control.kill", "set state"] });
    expect(errors).toEqual(["permission_denied"]);
  });

  it("stop() closes without reconnecting", async () => {
    const { s } = setup(ticket);
    const spy = vi.fn();
    s.start();
    await flush();
    s.stop();
    (FakeWS.all[0] as FakeWS).onclose?.({ code: 1006, reason: "" });
    spy();
    await flush();
    expect(FakeWS.all).toHaveLength(1);
  });
});

describe("resolveWsUrl", () => {
  const loc = { protocol: "https:", host: "panel.example" };
  it("keeps absolute URLs, upgrades ws to wss on https pages, resolves paths", () => {
    expect(resolveWsUrl("wss://gw/ws/1", loc)).toBe("wss://gw/ws/1");
    expect(resolveWsUrl("ws://gw/ws/1", loc)).toBe("wss://gw/ws/1");
    expect(resolveWsUrl("/ws/1", loc)).toBe("wss://panel.example/ws/1");
    expect(resolveWsUrl("/ws/1", { protocol: "http:", host: "h:8080" })).toBe("ws://h:8080/ws/1");
  });
});
