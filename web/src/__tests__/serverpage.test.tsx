import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { act, fireEvent, render, screen, waitFor } from "@testing-library/react";

// xterm.js needs a real layout engine: a stand-in that records what is written.
const written: string[] = [];
vi.mock("@xterm/xterm", () => ({
  Terminal: class {
    buffer = { active: { viewportY: 0, baseY: 0 } };
    loadAddon() {}
    open() {}
    write(s: string) {
      written.push(s);
    }
    clear() {}
    scrollToBottom() {}
    onScroll() {
      return { dispose() {} };
    }
    onWriteParsed() {
      return { dispose() {} };
    }
    dispose() {}
  },
}));
vi.mock("@xterm/addon-fit", () => ({ FitAddon: class { fit() {} } }));
vi.mock("@xterm/xterm/css/xterm.css", () => ({}));

import { api, ApiError } from "../api";
import ServerPage from "../pages/ServerPage";
import { ToastProvider } from "../toast";

class FakeWS {
  static last: FakeWS | null = null;
  readyState = 0;
  sent: string[] = [];
  onopen: (() => void) | null = null;
  onmessage: ((e: { data: string }) => void) | null = null;
  onclose: ((e: { code: number; reason: string }) => void) | null = null;
  onerror: (() => void) | null = null;
  constructor(public url: string) {
    FakeWS.last = this;
    setTimeout(() => {
      this.readyState = 1;
      this.onopen?.();
    }, 0);
  }
  send(s: string) {
    this.sent.push(s);
  }
  close() {}
  recv(m: unknown) {
    act(() => this.onmessage?.({ data: JSON.stringify(m) }));
  }
}

const SID = "33333333-3333-3333-3333-333333333333";
let perms: string[] | undefined;

beforeEach(() => {
  written.length = 0;
  FakeWS.last = null;
  vi.stubGlobal("WebSocket", FakeWS);
  perms = undefined;
  vi.spyOn(api, "get").mockImplementation(((path: string) => {
    if (path === `/servers/${SID}`)
      return Promise.resolve({ id: SID, name: "Arena", state: "offline", installed: true, allocation: { ip: "127.0.0.1", port: 30000 }, permissions: perms });
    if (path === `/servers/${SID}/websocket`) return Promise.resolve({ token: "t", url: "ws://gw/ws/" + SID, expires_at: 0, permissions: perms ?? ["*"] });
    return Promise.resolve({ state: "offline", stats: null });
  }) as typeof api.get);
});
afterEach(() => {
  vi.restoreAllMocks();
  vi.unstubAllGlobals();
});

function renderPage() {
  return render(
    <ToastProvider>
      <ServerPage id={SID} />
    </ToastProvider>,
  );
}

async function connect() {
  await waitFor(() => expect(FakeWS.last?.sent.length).toBeGreaterThan(0));
  const ws = FakeWS.last as FakeWS;
  expect(JSON.parse(ws.sent[0] as string)).toEqual({ event: "auth", args: ["t"] });
  ws.recv({ event: "auth success", args: [] });
  return ws;
}

describe("ServerPage", () => {
  it("shows history then live lines, follows the state and sends commands over the socket", async () => {
    renderPage();
    expect(await screen.findByText("Arena")).toBeTruthy();
    const ws = await connect();
    expect(ws.sent.map((s) => JSON.parse(s).event)).toContain("send logs");
    ws.recv({ event: "status", args: ["running"], previous: "starting" });
    expect(screen.getByTestId("server-state").textContent).toBe("running");
    ws.recv({ event: "console output", args: ["\x1b[32mReady\x1b[0m"], seq: 1 });
    expect(written.join("")).toContain("\x1b[32mReady\x1b[0m\r\n");
    const input = screen.getByTestId("console-input") as HTMLInputElement;
    expect(input.disabled).toBe(false);
    fireEvent.change(input, { target: { value: "say hi" } });
    fireEvent.keyDown(input, { key: "Enter" });
    expect(JSON.parse(ws.sent[ws.sent.length - 1] as string)).toEqual({ event: "send command", args: ["say hi"] });
  });

  it("posts power actions and shows the API's refusal in a toast", async () => {
    const post = vi.spyOn(api, "post").mockRejectedValue(new ApiError(403, "forbidden", "missing permission control.start"));
    renderPage();
    await connect();
    const start = await screen.findByTestId("power-start");
    await waitFor(() => expect((start as HTMLButtonElement).disabled).toBe(false));
    fireEvent.click(start);
    expect(post).toHaveBeenCalledWith(`/servers/${SID}/power`, { action: "start" });
    expect((await screen.findByTestId("toast")).textContent).toContain("missing permission control.start");
  });

  it("disables power buttons the user lacks, with the reason", async () => {
    perms = ["websocket.connect", "control.console", "control.stop"];
    renderPage();
    await connect();
    await screen.findByText("Arena");
    const start = screen.getByTestId("power-start") as HTMLButtonElement;
    await waitFor(() => expect(start.dataset.reason).toContain("control.start"));
    expect(start.disabled).toBe(true);
    expect((screen.getByTestId("install-button") as HTMLButtonElement).disabled).toBe(true);
  });

  it("shows the reconnecting state when the socket drops", async () => {
    renderPage();
    const ws = await connect();
    expect(screen.queryByTestId("reconnecting")).toBeNull();
    act(() => ws.onclose?.({ code: 1006, reason: "" }));
    expect(await screen.findByTestId("reconnecting")).toBeTruthy();
  });

  it("prints install output and gateway errors", async () => {
    renderPage();
    const ws = await connect();
    ws.recv({ event: "install output", args: ["downloading"], seq: 1 });
    expect(written.join("")).toContain("[install]");
    ws.recv({ event: "error", args: ["node_unavailable", "the node does not answer", "set state"] });
    expect((await screen.findByTestId("toast")).textContent).toContain("the node does not answer");
  });
});
