import { describe, expect, it } from "vitest";
import { fireEvent, render, screen, waitFor } from "@testing-library/react";
import { ApiClient } from "../api";
import { LoginPage } from "../pages/LoginPage";
import { ToastProvider } from "../toast";

const json = (status: number, body: unknown) => new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });

function setup(handler: (body: Record<string, string>) => Response) {
  const bodies: Record<string, string>[] = [];
  const f = (async (_u: RequestInfo | URL, init?: RequestInit) => {
    const b = JSON.parse(String(init?.body)) as Record<string, string>;
    bodies.push(b);
    return handler(b);
  }) as typeof fetch;
  const client = new ApiClient({ fetch: f });
  render(
    <ToastProvider>
      <LoginPage client={client} />
    </ToastProvider>,
  );
  return { client, bodies };
}

const ok = {
  access_token: "a",
  expires_in: 900,
  refresh_token: "wdr_x",
  user: { id: "1", username: "admin", email: "a@example.com", role: "admin" },
};

function fill(user: string, pw: string) {
  fireEvent.change(screen.getByTestId("login-username"), { target: { value: user } });
  fireEvent.change(screen.getByTestId("login-password"), { target: { value: pw } });
  fireEvent.click(screen.getByTestId("login-submit"));
}

describe("sign-in", () => {
  it("asks for the TOTP code when the API says totp_required, then signs in", async () => {
    const { client, bodies } = setup((b) =>
      b.totp ? (b.totp === "123456" ? json(200, ok) : json(401, { error: { code: "invalid_totp", message: "wrong code" } })) : json(401, { error: { code: "totp_required", message: "this account needs a TOTP code" } }),
    );
    fill("admin", "secret-password");
    const totp = await screen.findByTestId("login-totp");
    expect(screen.queryByTestId("login-password")).toBeNull();
    fireEvent.change(totp, { target: { value: "000000" } });
    fireEvent.click(screen.getByTestId("login-submit"));
    await screen.findByTestId("login-error");
    expect(screen.getByTestId("login-error").textContent).toMatch(/wrong, expired or was already used/);
    expect(screen.getAllByTestId("toast").length).toBeGreaterThan(0);
    fireEvent.change(screen.getByTestId("login-totp"), { target: { value: "123456" } });
    fireEvent.click(screen.getByTestId("login-submit"));
    await waitFor(() => expect(client.user?.username).toBe("admin"));
    expect(bodies[bodies.length - 1]).toEqual({ username: "admin", password: "secret-password", totp: "123456" });
  });

  it("shows a clear message for wrong credentials", async () => {
    setup(() => json(401, { error: { code: "invalid_credentials", message: "wrong username/email or password" } }));
    fill("admin", "nope");
    expect((await screen.findByTestId("login-error")).textContent).toBe("Wrong username/email or password.");
    expect(screen.getByTestId("toast").textContent).toContain("Wrong username/email or password.");
  });

  it("shows lockout with the wait time", async () => {
    setup(() => new Response(JSON.stringify({ error: { code: "rate_limited", message: "too many failed logins; wait before trying again" } }), { status: 429, headers: { "Retry-After": "120" } }));
    fill("admin", "nope");
    expect((await screen.findByTestId("login-error")).textContent).toMatch(/Too many failed sign-ins.*retry in 2 min/);
  });
});
