// The REST client for warden-api (/api/v1, same origin).
//
// * Errors: every non-2xx answer {"error":{"code","message","details"}} is thrown
//   as an ApiError carrying the API's message, code, HTTP status and details.
// * Tokens: the access token lives in memory only; the refresh token in
//   localStorage so a reload keeps the session. The access token is refreshed
//   shortly before it expires, and once more on a 401 (expired/revoked token);
//   if that refresh fails, the session ends with a clear message.
// * Refresh tokens are single-use and presenting one twice revokes the whole
//   session, so concurrent callers share one refresh in flight.

export const API_BASE = "/api/v1";
const REFRESH_KEY = "warden.refresh_token";
/** Refresh this long before the access token expires. */
const EARLY_REFRESH_MS = 30_000;

export type ErrorDetails = Record<string, unknown>;

export class ApiError extends Error {
  readonly code: string;
  readonly status: number;
  readonly details: ErrorDetails | undefined;
  readonly retryAfter: number | undefined;
  constructor(status: number, code: string, message: string, details?: ErrorDetails, retryAfter?: number) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.details = details;
    this.retryAfter = retryAfter;
  }
}

export interface User {
  id: string;
  username: string;
  email: string;
  role: "admin" | "user";
  totp_enabled?: boolean;
  created_at?: string;
}

export interface Session {
  access_token: string;
  token_type?: string;
  expires_in: number;
  refresh_token: string;
  user?: User;
}

export interface LoginInput {
  login: string; // username or email
  password: string;
  totp?: string;
}

export type AuthEvent = { user: User | null; reason?: string };
type Listener = (e: AuthEvent) => void;

export interface StorageLike {
  getItem(k: string): string | null;
  setItem(k: string, v: string): void;
  removeItem(k: string): void;
}

export const SESSION_EXPIRED_MESSAGE = "Your session has expired or was ended elsewhere. Please sign in again.";

/** Turn a fetch Response that is not ok into an ApiError (message from the API when it sent one). */
export async function errorFromResponse(res: Response): Promise<ApiError> {
  let code = "http_" + res.status;
  let message = res.statusText || `Request failed (HTTP ${res.status})`;
  let details: ErrorDetails | undefined;
  try {
    const text = await res.text();
    if (text) {
      const body = JSON.parse(text) as unknown;
      const err = (body as { error?: { code?: unknown; message?: unknown; details?: unknown } }).error;
      if (err && typeof err === "object") {
        if (typeof err.code === "string") code = err.code;
        if (typeof err.message === "string" && err.message) message = err.message;
        if (err.details && typeof err.details === "object") details = err.details as ErrorDetails;
      }
    }
  } catch {
    /* not JSON: keep the HTTP status text */
  }
  const ra = res.headers.get("Retry-After");
  const retryAfter = ra ? Number(ra) : undefined;
  if (code === "rate_limited" && retryAfter && Number.isFinite(retryAfter)) {
    message = `${message} (retry in ${formatSeconds(retryAfter)})`;
  }
  return new ApiError(res.status, code, message, details, retryAfter);
}

function formatSeconds(s: number): string {
  if (s < 60) return `${s} s`;
  const m = Math.ceil(s / 60);
  return `${m} min`;
}

/** Field errors from an invalid_argument answer: {"name":"is too long"}. */
export function fieldErrors(err: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (err instanceof ApiError && err.details) {
    const walk = (obj: ErrorDetails, prefix: string) => {
      for (const [k, v] of Object.entries(obj)) {
        if (typeof v === "string") out[prefix + k] = v;
        else if (v && typeof v === "object" && !Array.isArray(v)) walk(v as ErrorDetails, prefix);
      }
    };
    walk(err.details, "");
  }
  return out;
}

export interface ClientOptions {
  fetch?: typeof fetch;
  storage?: StorageLike;
  now?: () => number;
  base?: string;
}

export class ApiClient {
  private accessToken: string | null = null;
  private accessExpiresAt = 0;
  private refreshing: Promise<boolean> | null = null;
  private listeners = new Set<Listener>();
  private readonly fetchFn: typeof fetch;
  private readonly storage: StorageLike;
  private readonly now: () => number;
  private readonly base: string;
  user: User | null = null;

  constructor(opts: ClientOptions = {}) {
    this.fetchFn = opts.fetch ?? ((...a: Parameters<typeof fetch>) => fetch(...a));
    this.storage = opts.storage ?? safeLocalStorage();
    this.now = opts.now ?? (() => Date.now());
    this.base = opts.base ?? API_BASE;
  }

  onAuthChange(l: Listener): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  private emit(e: AuthEvent) {
    for (const l of this.listeners) l(e);
  }

  get refreshToken(): string | null {
    return this.storage.getItem(REFRESH_KEY);
  }

  get isSignedIn(): boolean {
    return this.accessToken !== null || this.refreshToken !== null;
  }

  /** The current access token (for tests and diagnostics). */
  get token(): string | null {
    return this.accessToken;
  }

  private setSession(s: Session) {
    this.accessToken = s.access_token;
    this.accessExpiresAt = this.now() + Math.max(1, s.expires_in || 900) * 1000;
    this.storage.setItem(REFRESH_KEY, s.refresh_token);
    if (s.user) this.user = s.user;
  }

  private clearSession() {
    this.accessToken = null;
    this.accessExpiresAt = 0;
    this.storage.removeItem(REFRESH_KEY);
    this.user = null;
  }

  /** End the session locally and tell the UI why. */
  signOut(reason?: string) {
    const had = this.user !== null || this.accessToken !== null || this.refreshToken !== null;
    this.clearSession();
    if (had || reason) this.emit({ user: null, reason });
  }

  async login(input: LoginInput): Promise<User> {
    const body: Record<string, string> = { password: input.password };
    const id = input.login.trim();
    if (id.includes("@")) body.email = id;
    else body.username = id;
    if (input.totp !== undefined && input.totp.trim() !== "") body.totp = input.totp.trim().replace(/\s+/g, "");
    const res = await this.fetchFn(this.base + "/auth/login", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    if (!res.ok) throw await errorFromResponse(res);
    const s = (await res.json()) as Session;
    this.setSession(s);
    if (!s.user) this.user = await this.request<User>("GET", "/me");
    this.emit({ user: this.user });
    return this.user as User;
  }

  /** Restore a session from the stored refresh token (page load). */
  async resume(): Promise<User | null> {
    if (!this.refreshToken) return null;
    const ok = await this.refresh();
    if (!ok) return null;
    if (!this.user) {
      try {
        this.user = await this.request<User>("GET", "/me");
      } catch {
        return null;
      }
    }
    this.emit({ user: this.user });
    return this.user;
  }

  async logout(): Promise<void> {
    try {
      if (this.accessToken) {
        await this.fetchFn(this.base + "/auth/logout", {
          method: "POST",
          headers: { Authorization: "Bearer " + this.accessToken },
        });
      }
    } catch {
      /* signing out locally is what matters */
    } finally {
      this.clearSession();
      this.emit({ user: null });
    }
  }

  /** Trade the refresh token for a new pair; shared by concurrent callers. Resolves false when the session is over. */
  refresh(): Promise<boolean> {
    if (this.refreshing) return this.refreshing;
    if (!this.refreshToken) return Promise.resolve(false);
    this.refreshing = withRefreshLock(async () => {
      // Read the token inside the lock: another tab may just have rotated it,
      // and presenting a used refresh token would revoke the whole session.
      const rt = this.refreshToken;
      if (!rt) return false;
      try {
        const res = await this.fetchFn(this.base + "/auth/refresh", {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ refresh_token: rt }),
        });
        if (!res.ok) {
          // A network/5xx failure is not the end of the session; 4xx is.
          if (res.status >= 500) throw await errorFromResponse(res);
          this.signOut(SESSION_EXPIRED_MESSAGE);
          return false;
        }
        this.setSession((await res.json()) as Session);
        return true;
      } finally {
        this.refreshing = null;
      }
    });
    return this.refreshing;
  }

  private async ensureFresh() {
    if (this.refreshing) {
      await this.refreshing;
      return;
    }
    if (!this.refreshToken) return;
    if (this.accessToken === null || this.now() > this.accessExpiresAt - EARLY_REFRESH_MS) {
      await this.refresh();
    }
  }

  private send(method: string, path: string, body: unknown): Promise<Response> {
    const headers: Record<string, string> = { Accept: "application/json" };
    if (this.accessToken) headers.Authorization = "Bearer " + this.accessToken;
    let payload: string | undefined;
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      payload = typeof body === "string" ? body : JSON.stringify(body);
    }
    return this.fetchFn(this.base + path, { method, headers, body: payload });
  }

  /** One authenticated call. Returns the parsed JSON (undefined for 204). */
  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    await this.ensureFresh();
    let res = await this.send(method, path, body);
    if (res.status === 401 && this.refreshToken) {
      const err = await errorFromResponse(res.clone());
      if (isExpiredTokenError(err)) {
        const ok = await this.refresh();
        if (!ok) throw new ApiError(401, "session_expired", SESSION_EXPIRED_MESSAGE);
        res = await this.send(method, path, body);
        if (res.status === 401) {
          const again = await errorFromResponse(res);
          this.signOut(SESSION_EXPIRED_MESSAGE);
          throw again;
        }
      }
    }
    if (!res.ok) throw await errorFromResponse(res);
    if (res.status === 204) return undefined as T;
    const text = await res.text();
    return (text ? JSON.parse(text) : undefined) as T;
  }

  get<T>(path: string) {
    return this.request<T>("GET", path);
  }
  post<T>(path: string, body?: unknown) {
    return this.request<T>("POST", path, body ?? {});
  }
  patch<T>(path: string, body: unknown) {
    return this.request<T>("PATCH", path, body);
  }
  put<T>(path: string, body: unknown) {
    return this.request<T>("PUT", path, body);
  }
  del<T>(path: string, body?: unknown) {
    return this.request<T>("DELETE", path, body);
  }
}

/** 401s that a refresh can cure: an expired or revoked access token. Login errors (invalid_credentials...) are not. */
export function isExpiredTokenError(e: ApiError): boolean {
  return e.status === 401 && (e.code === "token_expired" || e.code === "unauthenticated" || e.code === "invalid_token");
}

/** Serialise refreshes across tabs (Web Locks API) where the browser has it. */
function withRefreshLock<T>(fn: () => Promise<T>): Promise<T> {
  const locks = typeof navigator !== "undefined" ? (navigator as Navigator & { locks?: LockManager }).locks : undefined;
  if (!locks?.request) return fn();
  return locks.request("warden-refresh", fn) as Promise<T>;
}

function safeLocalStorage(): StorageLike {
  try {
    if (typeof localStorage !== "undefined") return localStorage;
  } catch {
    /* private mode */
  }
  const m = new Map<string, string>();
  return {
    getItem: (k) => m.get(k) ?? null,
    setItem: (k, v) => void m.set(k, v),
    removeItem: (k) => void m.delete(k),
  };
}

export const api = new ApiClient();

// ---- resource types -------------------------------------------------------

export type ServerState = "offline" | "installing" | "starting" | "running" | "stopping" | "crashed" | "unknown";

export interface Server {
  id: string;
  name: string;
  description?: string;
  owner_id?: string;
  node_id?: string;
  template_id?: string;
  allocation?: { id?: string; ip?: string; port?: number } | null;
  limits?: { memory_mb?: number; disk_mb?: number; cpu_pct?: number; pids?: number };
  state?: ServerState | string;
  installed?: boolean;
  suspended?: boolean;
  created_at?: string;
  permissions?: string[];
  /** In lists: the latest figures of a running server (null otherwise). */
  resources?: { cpu_percent?: number; memory_bytes?: number; memory_limit_bytes?: number; age_ms?: number } | null;
}

export interface Page<T> {
  data: T[];
  pagination?: { page: number; per_page: number; total: number };
}

export interface Stats {
  state?: string;
  cpu_percent?: number;
  memory_bytes?: number;
  memory_limit_bytes?: number;
  disk_bytes?: number;
  uptime_ms?: number;
  network?: { rx_bytes?: number; tx_bytes?: number };
  time_unix_ms?: number;
}

export interface Resources {
  state: string;
  stats: Stats | null;
}

export interface Node {
  id: string;
  name: string;
  fqdn: string;
  public?: boolean;
  memory_mb?: number;
  memory_overalloc_pct?: number;
  disk_mb?: number;
  disk_overalloc_pct?: number;
  maintenance?: boolean;
  online?: boolean;
  version?: string;
  last_seen_at?: string | null;
  servers?: number;
}

export interface Allocation {
  id: string;
  ip: string;
  port: number;
  server_id?: string | null;
}

export interface TemplateSummary {
  id: string;
  slug?: string;
  name: string;
  description?: string;
  author?: string;
  import_notes?: string[];
}

export interface StartupVariable {
  name: string;
  description?: string;
  type?: "string" | "integer" | "boolean" | "enum";
  required?: boolean;
  user_editable?: boolean;
  secret?: boolean;
  value?: string;
  options?: string[];
}

export interface AuditEntry {
  id: number;
  at: string;
  actor_user_id?: string | null;
  actor_label?: string;
  ip?: string | null;
  action: string;
  target_type?: string | null;
  target_id?: string | null;
  server_id?: string | null;
  metadata?: Record<string, unknown>;
  request_id?: string | null;
}

export interface Subuser {
  user_id: string;
  username?: string;
  email?: string;
  permissions: string[];
}

export interface ApiKey {
  id: string;
  name: string;
  prefix?: string;
  scopes?: string[];
  created_at?: string;
  last_used_at?: string | null;
  expires_at?: string | null;
  key?: string;
}

export interface AdminUser extends User {
  disabled?: boolean;
  servers?: number;
}

export interface WsTicket {
  token: string;
  url: string;
  expires_at: number;
  permissions: string[];
}
