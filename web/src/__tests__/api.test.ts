import { describe, expect, it, vi } from "vitest";
import { ApiClient, ApiError, errorFromResponse, fieldErrors, SESSION_EXPIRED_MESSAGE, type StorageLike } from "../api";

function mem(): StorageLike & { m: Map<string, string> } {
  const m = new Map<string, string>();
  return { m, getItem: (k) => m.get(k) ?? null, setItem: (k, v) => void m.set(k, v), removeItem: (k) => void m.delete(k) };
}

const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  new Response(body === undefined ? null : JSON.stringify(body), { status, headers: { "Content-Type": "application/json", ...headers } });

const session = (n: number, expires_in = 900) => ({
  access_token: "access" + n,
  token_type: "Bearer",
  expires_in,
  refresh_token: "wdr_" + n,
  user: { id: "u1", username: "admin", email: "a@example.com", role: "admin" },
});

type Call = { url: string; method: string; auth?: string; body?: unknown };

function fakeFetch(handler: (c: Call) => Response | Promise<Response>) {
  const calls: Call[] = [];
  const f = vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
    const headers = (init?.headers ?? {}) as Record<string, string>;
    const c: Call = {
      url: String(input),
      method: init?.method ?? "GET",
      auth: headers.Authorization,
      body: typeof init?.body === "string" ? JSON.parse(init.body) : undefined,
    };
    calls.push(c);
    return handler(c);
  });
  return { f: f as unknown as typeof fetch, calls };
}

describe("error mapping", () => {
  it("turns the API error shape into an ApiError with the message", async () => {
    const e = await errorFromResponse(json(400, { error: { code: "invalid_argument", message: "invalid fields: name", details: { name: "is too long" } } }));
    expect(e).toBeInstanceOf(ApiError);
    expect(e.message).toBe("invalid fields: name");
    expect(e.code).toBe("invalid_argument");
    expect(e.status).toBe(400);
    expect(fieldErrors(e)).toEqual({ name: "is too long" });
  });

  it("falls back to the HTTP status when the body is not JSON", async () => {
    const e = await errorFromResponse(new Response("<html>bad gateway</html>", { status: 502, statusText: "Bad Gateway" }));
    expect(e.code).toBe("http_502");
    expect(e.message).toBe("Bad Gateway");
  });

  it("adds Retry-After to rate limit messages", async () => {
    const e = await errorFromResponse(json(429, { error: { code: "rate_limited", message: "too many failed logins; wait before trying again" } }, { "Retry-After": "30" }));
    expect(e.message).toContain("retry in 30 s");
    expect(e.retryAfter).toBe(30);
  });

  it("request() throws the API message", async () => {
    const { f } = fakeFetch(() => json(403, { error: { code: "forbidden", message: "needs control.start" } }));
    const c = new ApiClient({ fetch: f, storage: mem() });
    await expect(c.get("/servers")).rejects.toMatchObject({ message: "needs control.start", code: "forbidden", status: 403 });
  });
});

describe("login", () => {
  it("sends username or email and keeps the refresh token in storage, the access token in memory", async () => {
    const storage = mem();
    const { f, calls } = fakeFetch(() => json(200, session(1)));
    const c = new ApiClient({ fetch: f, storage });
    const user = await c.login({ login: "admin", password: "pw" });
    expect(user.username).toBe("admin");
    expect(calls[0]?.body).toEqual({ username: "admin", password: "pw" });
    expect(storage.m.get("warden.refresh_token")).toBe("wdr_1");
    expect([...storage.m.values()]).not.toContain("access1");
    expect(c.token).toBe("access1");
    await c.login({ login: "a@example.com", password: "pw", totp: " 123 456 " });
    expect(calls[1]?.body).toEqual({ email: "a@example.com", password: "pw", totp: "123456" });
  });

  it("surfaces totp_required as an ApiError code", async () => {
    const { f } = fakeFetch(() => json(401, { error: { code: "totp_required", message: "this account needs a TOTP code" } }));
    const c = new ApiClient({ fetch: f, storage: mem() });
    await expect(c.login({ login: "admin", password: "pw" })).rejects.toMatchObject({ code: "totp_required" });
    expect(c.isSignedIn).toBe(false);
  });
});

describe("silent refresh", () => {
  it("refreshes once on a 401 and retries the request", async () => {
    let n = 1;
    const { f, calls } = fakeFetch((c) => {
      if (c.url.endsWith("/auth/login")) return json(200, session(1));
      if (c.url.endsWith("/auth/refresh")) return json(200, session(++n));
      if (c.auth === "Bearer access1") return json(401, { error: { code: "unauthenticated", message: "token expired" } });
      return json(200, { data: [] });
    });
    const c = new ApiClient({ fetch: f, storage: mem() });
    await c.login({ login: "admin", password: "pw" });
    await expect(c.get("/servers")).resolves.toEqual({ data: [] });
    const refreshes = calls.filter((x) => x.url.endsWith("/auth/refresh"));
    expect(refreshes).toHaveLength(1);
    expect(refreshes[0]?.body).toEqual({ refresh_token: "wdr_1" });
    expect(calls[calls.length - 1]?.auth).toBe("Bearer access2");
  });

  it("shares one refresh between concurrent requests (refresh tokens are single-use)", async () => {
    let n = 1;
    const { f, calls } = fakeFetch(async (c) => {
      if (c.url.endsWith("/auth/login")) return json(200, session(1));
      if (c.url.endsWith("/auth/refresh")) {
        await new Promise((r) => setTimeout(r, 10));
        return json(200, session(++n));
      }
      if (c.auth === "Bearer access1") return json(401, { error: { code: "unauthenticated", message: "expired" } });
      return json(200, { ok: true });
    });
    const c = new ApiClient({ fetch: f, storage: mem() });
    await c.login({ login: "admin", password: "pw" });
    await Promise.all([c.get("/a"), c.get("/b"), c.get("/c")]);
    expect(calls.filter((x) => x.url.endsWith("/auth/refresh"))).toHaveLength(1);
  });

  it("refreshes before the access token expires", async () => {
    let now = 1_000_000;
    let n = 1;
    const { f, calls } = fakeFetch((c) => {
      if (c.url.endsWith("/auth/login")) return json(200, session(1, 60));
      if (c.url.endsWith("/auth/refresh")) return json(200, session(++n, 60));
      return json(200, {});
    });
    const c = new ApiClient({ fetch: f, storage: mem(), now: () => now });
    await c.login({ login: "admin", password: "pw" });
    await c.get("/me");
    expect(calls.filter((x) => x.url.endsWith("/auth/refresh"))).toHaveLength(0);
    now += 45_000; // within 30 s of expiry
    await c.get("/me");
    expect(calls.filter((x) => x.url.endsWith("/auth/refresh"))).toHaveLength(1);
    expect(calls[calls.length - 1]?.auth).toBe("Bearer access2");
  });

  it("signs out with a clear message when the refresh fails", async () => {
    const storage = mem();
    const { f } = fakeFetch((c) => {
      if (c.url.endsWith("/auth/login")) return json(200, session(1));
      if (c.url.endsWith("/auth/refresh")) return json(401, { error: { code: "token_reused", message: "refresh token reused" } });
      return json(401, { error: { code: "unauthenticated", message: "session revoked" } });
    });
    const c = new ApiClient({ fetch: f, storage });
    const events: unknown[] = [];
    c.onAuthChange((e) => events.push(e));
    await c.login({ login: "admin", password: "pw" });
    await expect(c.get("/servers")).rejects.toMatchObject({ message: SESSION_EXPIRED_MESSAGE });
    expect(events[events.length - 1]).toEqual({ user: null, reason: SESSION_EXPIRED_MESSAGE });
    expect(storage.m.has("warden.refresh_token")).toBe(false);
    expect(c.isSignedIn).toBe(false);
  });

  it("does not refresh on login errors like invalid_credentials", async () => {
    const { f, calls } = fakeFetch((c) => {
      if (c.url.endsWith("/auth/login")) return json(200, session(1));
      return json(401, { error: { code: "invalid_credentials", message: "wrong current password" } });
    });
    const c = new ApiClient({ fetch: f, storage: mem() });
    await c.login({ login: "admin", password: "pw" });
    await expect(c.post("/me/password", {})).rejects.toMatchObject({ message: "wrong current password" });
    expect(calls.some((x) => x.url.endsWith("/auth/refresh"))).toBe(false);
    expect(c.isSignedIn).toBe(true);
  });

  it("resumes a session from the stored refresh token", async () => {
    const storage = mem();
    storage.setItem("warden.refresh_token", "wdr_9");
    const { f } = fakeFetch((c) => (c.url.endsWith("/auth/refresh") ? json(200, session(10)) : json(200, {})));
    const c = new ApiClient({ fetch: f, storage });
    const u = await c.resume();
    expect(u?.username).toBe("admin");
    expect(c.token).toBe("access10");
  });

  it("logout calls the API and clears tokens", async () => {
    const storage = mem();
    const { f, calls } = fakeFetch((c) => (c.url.endsWith("/auth/login") ? json(200, session(1)) : new Response(null, { status: 204 })));
    const c = new ApiClient({ fetch: f, storage });
    await c.login({ login: "admin", password: "pw" });
    await c.logout();
    expect(calls[1]).toMatchObject({ method: "POST", auth: "Bearer access1" });
    expect(calls[1]?.url).toBe("/api/v1/auth/logout");
    expect(c.isSignedIn).toBe(false);
  });
});
