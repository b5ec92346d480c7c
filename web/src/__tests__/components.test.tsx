import { describe, expect, it, vi } from "vitest";
import { fireEvent, render, screen } from "@testing-library/react";
import { PowerButtons } from "../components/PowerButtons";
import { CommandInput } from "../components/CommandInput";
import { CommandHistory } from "../components/history";
import { StateBadge } from "../components/ui";

describe("StateBadge", () => {
  it("shows the state as text with a data-state", () => {
    render(<StateBadge state="running" />);
    const b = screen.getByTestId("server-state");
    expect(b.textContent).toBe("running");
    expect(b.dataset.state).toBe("running");
  });
  it("shows unknown for a missing state", () => {
    render(<StateBadge state={undefined} />);
    expect(screen.getByTestId("server-state").textContent).toBe("unknown");
  });
});

describe("PowerButtons", () => {
  it("reflects the state: offline → only start", () => {
    render(<PowerButtons ctx={{ state: "offline", permissions: ["control.*"] }} onAction={() => undefined} />);
    expect((screen.getByTestId("power-start") as HTMLButtonElement).disabled).toBe(false);
    for (const a of ["stop", "restart", "kill"]) expect((screen.getByTestId(`power-${a}`) as HTMLButtonElement).disabled).toBe(true);
  });

  it("a subuser without control.start sees start disabled with the reason", () => {
    render(<PowerButtons ctx={{ state: "offline", permissions: ["websocket.connect", "control.console"] }} onAction={() => undefined} />);
    const b = screen.getByTestId("power-start") as HTMLButtonElement;
    expect(b.disabled).toBe(true);
    expect(b.dataset.reason).toContain("control.start");
    expect(b.parentElement?.getAttribute("title")).toContain("control.start");
  });

  it("asks before killing", () => {
    const on = vi.fn();
    render(<PowerButtons ctx={{ state: "running", permissions: ["control.*"] }} onAction={on} />);
    fireEvent.click(screen.getByTestId("power-kill"));
    expect(on).not.toHaveBeenCalled();
    fireEvent.click(screen.getByTestId("confirm-kill"));
    expect(on).toHaveBeenCalledWith("kill");
    fireEvent.click(screen.getByTestId("power-stop"));
    expect(on).toHaveBeenLastCalledWith("stop");
  });

  it("cancelling the kill dialog does nothing", () => {
    const on = vi.fn();
    render(<PowerButtons ctx={{ state: "running", permissions: ["control.*"] }} onAction={on} />);
    fireEvent.click(screen.getByTestId("power-kill"));
    fireEvent.click(screen.getByText("Cancel"));
    expect(screen.queryByTestId("confirm-kill")).toBeNull();
    expect(on).not.toHaveBeenCalled();
  });
});

describe("CommandHistory", () => {
  it("walks up and down and restores the draft", () => {
    const h = new CommandHistory();
    h.push("list");
    h.push("say hi");
    h.push("say hi"); // no duplicate in a row
    expect(h.entries).toEqual(["list", "say hi"]);
    expect(h.up("dra")).toBe("say hi");
    expect(h.up("say hi")).toBe("list");
    expect(h.up("list")).toBe("list");
    expect(h.down("list")).toBe("say hi");
    expect(h.down("say hi")).toBe("dra");
    expect(h.down("dra")).toBe("dra");
  });
});

describe("CommandInput", () => {
  it("sends on Enter, clears, and recalls with the arrow keys", () => {
    const sent: string[] = [];
    render(<CommandInput onSend={(c) => void sent.push(c)} />);
    const input = screen.getByTestId("console-input") as HTMLInputElement;
    fireEvent.change(input, { target: { value: "say one" } });
    fireEvent.keyDown(input, { key: "Enter" });
    fireEvent.change(input, { target: { value: "say two" } });
    fireEvent.keyDown(input, { key: "Enter" });
    expect(sent).toEqual(["say one", "say two"]);
    expect(input.value).toBe("");
    fireEvent.keyDown(input, { key: "ArrowUp" });
    expect(input.value).toBe("say two");
    fireEvent.keyDown(input, { key: "ArrowUp" });
    expect(input.value).toBe("say one");
    fireEvent.keyDown(input, { key: "ArrowDown" });
    expect(input.value).toBe("say two");
    fireEvent.keyDown(input, { key: "ArrowDown" });
    expect(input.value).toBe("");
  });

  it("is disabled with a reason", () => {
    render(<CommandInput onSend={() => undefined} disabled reason="The server is offline" />);
    const input = screen.getByTestId("console-input") as HTMLInputElement;
    expect(input.disabled).toBe(true);
    expect(input.placeholder).toBe("The server is offline");
  });
});

describe("Dialog", () => {
  it("does not steal the focus on re-render and closes on Escape", async () => {
    const { Dialog } = await import("../components/ui");
    const closed = vi.fn();
    const ui = (n: number) => (
      <Dialog open title="T" onClose={() => closed(n)} actions={<button>OK</button>}>
        <input data-testid="a" />
        <input data-testid="b" />
      </Dialog>
    );
    const { rerender } = render(ui(1));
    expect(document.activeElement).toBe(screen.getByTestId("a"));
    (screen.getByTestId("b") as HTMLInputElement).focus();
    rerender(ui(2));
    expect(document.activeElement).toBe(screen.getByTestId("b"));
    fireEvent.keyDown(window, { key: "Escape" });
    expect(closed).toHaveBeenCalledWith(2);
  });
});
