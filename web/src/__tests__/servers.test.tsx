import { afterEach, describe, expect, it, vi } from "vitest";
import { act, fireEvent, render, screen, waitFor } from "@testing-library/react";
import { api, ApiError, type Server } from "../api";
import { ServersPage } from "../pages/ServersPage";
import { ToastProvider } from "../toast";

const servers: Server[] = [
  { id: "11111111-1111-1111-1111-111111111111", name: "Survival", state: "running", node_id: "n1", allocation: { ip: "10.0.0.5", port: 25565 }, limits: { memory_mb: 1024 } },
  { id: "22222222-2222-2222-2222-222222222222", name: "Creative", state: "offline", node_id: "n1", allocation: { ip: "10.0.0.5", port: 25566 } },
];

afterEach(() => vi.restoreAllMocks());

function renderPage() {
  return render(
    <ToastProvider>
      <ServersPage />
    </ToastProvider>,
  );
}

describe("ServersPage", () => {
  it("shows a skeleton, then one row per server with state, address and resources, from one request", async () => {
    let resolve: (v: unknown) => void = () => undefined;
    const get = vi.spyOn(api, "get").mockImplementation((path: string) => {
      if (path.startsWith("/servers?")) return new Promise((r) => (resolve = r as (v: unknown) => void)) as Promise<never>;
      return Promise.reject(new Error("unexpected " + path));
    });
    renderPage();
    expect(screen.getByLabelText("Loading")).toBeTruthy();
    const withFigures = servers.map((s) =>
      s.state === "running" ? { ...s, resources: { cpu_percent: 42, memory_bytes: 512 * 1048576 } } : { ...s, resources: null },
    );
    await act(async () => resolve({ data: withFigures }));
    const rows = await screen.findAllByTestId("server-row");
    expect(rows.map((r) => r.dataset.serverId)).toEqual(servers.map((s) => s.id));
    expect(screen.getAllByTestId("server-state").map((b) => b.textContent)).toEqual(["running", "offline"]);
    expect(screen.getByText("10.0.0.5:25565")).toBeTruthy();
    await waitFor(() => expect(screen.getByText("42%")).toBeTruthy());
    expect(screen.getByText("512 MiB / 1.0 GiB")).toBeTruthy();
    expect(get.mock.calls.filter(([p]) => String(p).startsWith("/servers"))).toHaveLength(1); // no request per row
  });

  it("filters by search text and by state", async () => {
    vi.spyOn(api, "get").mockImplementation((path: string) =>
      (path.startsWith("/servers?") ? Promise.resolve({ data: servers }) : Promise.resolve({ state: "running", stats: null })) as Promise<never>,
    );
    renderPage();
    await screen.findAllByTestId("server-row");
    fireEvent.change(screen.getByTestId("server-search"), { target: { value: "25566" } });
    expect(screen.getAllByTestId("server-row").map((r) => r.textContent)).toEqual([expect.stringContaining("Creative")]);
    fireEvent.change(screen.getByTestId("server-search"), { target: { value: "" } });
    fireEvent.change(screen.getByTestId("server-filter"), { target: { value: "running" } });
    expect(screen.getAllByTestId("server-row")).toHaveLength(1);
    expect(screen.getByTestId("server-row").textContent).toContain("Survival");
  });

  it("pages through large fleets", async () => {
    const get = vi.spyOn(api, "get").mockImplementation(
      (() => Promise.resolve({ data: servers, pagination: { page: 1, per_page: 100, total: 250 } })) as never,
    );
    renderPage();
    const pager = await screen.findByTestId("server-pager");
    expect(pager.textContent).toContain("Page 1 of 3");
    fireEvent.click(screen.getByText("Next →"));
    await waitFor(() => expect(get.mock.calls.some(([p]) => String(p).includes("page=2"))).toBe(true));
  });

  it("shows a toast with the API's message when loading fails", async () => {
    vi.spyOn(api, "get").mockRejectedValue(new ApiError(503, "database_unavailable", "the database is not answering"));
    renderPage();
    const t = await screen.findByTestId("toast");
    expect(t.textContent).toContain("the database is not answering");
  });
});
