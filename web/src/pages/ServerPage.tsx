import { useCallback, useEffect, useRef, useState } from "react";
import { api, type Resources, type Server, type Stats, type WsTicket } from "../api";
import { useAuth } from "../auth";
import { Chart, type Point } from "../components/Chart";
import { CommandInput } from "../components/CommandInput";
import { Console, type ConsoleHandle } from "../components/Console";
import { PowerButtons } from "../components/PowerButtons";
import { Card, Dialog, Skeleton, StateBadge, formatBytes, formatDuration } from "../components/ui";
import { LiveSocket, type LinkStatus } from "../live";
import { can, type PowerAction } from "../perms";
import { Link, navigate } from "../router";
import { useToast } from "../toast";
import { address, useInterval } from "./ServersPage";
import { ActivityTab, SettingsTab, StartupTab, SubusersTab } from "./ServerTabs";
import styles from "./ServerPage.module.css";

const WINDOW_MS = 5 * 60_000;
type Tab = "console" | "startup" | "users" | "activity" | "settings";
const TABS: { id: Tab; label: string; perm?: string; admin?: boolean }[] = [
  { id: "console", label: "Console" },
  { id: "startup", label: "Startup", perm: "startup.read" },
  { id: "users", label: "Subusers", perm: "user.read" },
  { id: "activity", label: "Activity", perm: "activity.read" },
  { id: "settings", label: "Settings", admin: true },
];

interface Series {
  cpu: Point[];
  mem: Point[];
  rx: Point[];
  tx: Point[];
}

const WS_ERRORS: Record<string, string> = {
  permission_denied: "Not allowed",
  node_unavailable: "The server's node is not answering",
  failed_precondition: "Refused in the current state",
  rate_limited: "Slow down: too many messages",
  busy: "The gateway is busy; try again",
};

export default function ServerPage({ id, tab: initialTab }: { id: string; tab?: string }) {
  const { user } = useAuth();
  const isAdmin = user?.role === "admin";
  const toast = useToast();
  const [server, setServer] = useState<Server | null>(null);
  const [notFound, setNotFound] = useState<string | null>(null);
  const [state, setState] = useState<string | undefined>(undefined);
  const [link, setLink] = useState<LinkStatus>("connecting");
  const [linkDetail, setLinkDetail] = useState<string | undefined>();
  const [wsPerms, setWsPerms] = useState<string[] | undefined>(undefined);
  const [stats, setStats] = useState<Stats | null>(null);
  const [series, setSeries] = useState<Series>({ cpu: [], mem: [], rx: [], tx: [] });
  const [pending, setPending] = useState<PowerAction | null>(null);
  const [installing, setInstalling] = useState(false);
  const [confirmReinstall, setConfirmReinstall] = useState(false);
  const [tab, setTab] = useState<Tab>(TABS.some((t) => t.id === initialTab) ? (initialTab as Tab) : "console");
  const term = useRef<ConsoleHandle>(null);
  const live = useRef<LiveSocket | null>(null);
  const lastNet = useRef<{ t: number; rx: number; tx: number } | null>(null);
  const stateEvents = useRef(0); // bumped by every live status: newer than any REST answer in flight

  const permissions = server?.permissions ?? wsPerms;

  const loadServer = useCallback(async () => {
    try {
      const s = await api.get<Server>(`/servers/${id}`);
      setServer(s);
      setState((cur) => (live.current?.connected && cur ? cur : s.state));
    } catch (e) {
      setNotFound(e instanceof Error ? e.message : "Could not load the server");
    }
  }, [id]);

  const pushStats = useCallback((st: Stats) => {
    setStats(st);
    const t = st.time_unix_ms ?? Date.now();
    setSeries((prev) => {
      const cut = t - WINDOW_MS;
      const keep = (a: Point[]) => a.filter((p) => p.t >= cut && p.t < t);
      const next: Series = {
        cpu: [...keep(prev.cpu), { t, v: st.cpu_percent ?? 0 }],
        mem: [...keep(prev.mem), { t, v: st.memory_bytes ?? 0 }],
        rx: keep(prev.rx),
        tx: keep(prev.tx),
      };
      const n = st.network;
      if (n && typeof n.rx_bytes === "number" && typeof n.tx_bytes === "number") {
        const last = lastNet.current;
        if (last && t > last.t && n.rx_bytes >= last.rx && n.tx_bytes >= last.tx) {
          const dt = (t - last.t) / 1000;
          next.rx.push({ t, v: (n.rx_bytes - last.rx) / dt });
          next.tx.push({ t, v: (n.tx_bytes - last.tx) / dt });
        }
        lastNet.current = { t, rx: n.rx_bytes, tx: n.tx_bytes };
      }
      return next;
    });
  }, []);

  // One round of parallel loads on open; then the socket carries everything live.
  useEffect(() => {
    void loadServer();
    const sock = new LiveSocket(() => api.get<WsTicket>(`/servers/${id}/websocket`), {
      onLink: (s, detail) => {
        setLink(s);
        setLinkDetail(detail);
      },
      onPermissions: (p) => setWsPerms(p),
      onState: (s, extra) => {
        stateEvents.current++;
        setState(s);
        setPending(null);
        if (s === "installing") setInstalling(true);
        if (extra.previous === "installing" || s === "crashed") void loadServer();
        // Every status says whether the server is installed: a missed
        // installing -> offline transition cannot leave Start disabled.
        if (extra.installed !== undefined)
          setServer((cur) => (cur && cur.installed !== extra.installed ? { ...cur, installed: extra.installed } : cur));
        if (s !== "installing") setInstalling(false);
        if (s === "offline" || s === "crashed") setStats(null);
      },
      onConsole: (lines, source) => term.current?.write(lines, source === "system" ? "system" : "console"),
      onInstall: (lines) => term.current?.write(lines, "install"),
      onStats: pushStats,
      onError: (code, message, cause) => {
        setPending(null);
        toast.show(`${WS_ERRORS[code] ?? "Error"}: ${message}${cause ? ` (${cause})` : ""}`, "error");
      },
    });
    live.current = sock;
    sock.start();
    return () => {
      sock.stop();
      live.current = null;
    };
  }, [id, loadServer, pushStats, toast]);

  // Without the socket (denied, reconnecting), poll the REST API so the page stays live.
  useInterval(
    () => {
      void loadServer();
      api
        .get<Resources>(`/servers/${id}/resources`)
        .then((r) => {
          if (r.stats) pushStats({ ...r.stats, time_unix_ms: Date.now() });
        })
        .catch(() => undefined);
    },
    5000,
    link !== "connected",
  );

  const power = async (action: PowerAction) => {
    setPending(action);
    const seen = stateEvents.current;
    try {
      const r = await api.post<{ state?: string }>(`/servers/${id}/power`, { action });
      // The live channel may already have reported a later state (a fast stop): keep that.
      if (r?.state && stateEvents.current === seen) setState(r.state);
    } catch (e) {
      toast.error(e, `Could not ${action} the server`);
    } finally {
      setPending(null);
    }
  };

  const install = async () => {
    setConfirmReinstall(false);
    setInstalling(true);
    term.current?.write([`Installing ${server?.name ?? "server"}…`], "system");
    try {
      const seen = stateEvents.current;
      await api.post(`/servers/${id}/install`);
      if (stateEvents.current === seen) setState("installing");
    } catch (e) {
      setInstalling(false);
      toast.error(e, "Could not start the install");
    }
  };

  const sendCommand = (cmd: string): boolean => {
    if (live.current?.send("send command", [cmd])) return true;
    // Socket down: the REST route does the same.
    api.post(`/servers/${id}/command`, { command: cmd }).catch((e) => toast.error(e, "Command not sent"));
    return true;
  };

  if (notFound) {
    return (
      <Card title="Server unavailable">
        <p>{notFound}</p>
        <Link to="/">Back to servers</Link>
      </Card>
    );
  }

  const cur = state ?? server?.state;
  const canConsole = can(permissions, "control.console", isAdmin);
  const canInstall = can(permissions, "settings.reinstall", isAdmin);
  const consoleDisabledReason = !canConsole
    ? "You do not have permission to send commands (needs control.console)"
    : cur !== "running" && cur !== "starting"
      ? `The server is ${cur ?? "not running"}`
      : undefined;
  const memLimit = stats?.memory_limit_bytes || (server?.limits?.memory_mb ? server.limits.memory_mb * 1048576 : undefined);
  const busyInstalling = installing || cur === "installing";

  return (
    <div className={styles.page}>
      <header className={styles.head}>
        <div className={styles.title}>
          <Link to="/" className={styles.back} aria-label="Back to servers">
            ←
          </Link>
          {server ? <h1>{server.name}</h1> : <Skeleton width={200} height={24} />}
          <StateBadge state={cur} />
          {server && <span className="mono muted">{address(server)}</span>}
          {server?.suspended && <span className={styles.warn}>suspended</span>}
        </div>
        <div className={styles.actions}>
          <PowerButtons
            ctx={{ state: cur, permissions, isAdmin, installed: server?.installed, suspended: server?.suspended, pending }}
            onAction={(a) => void power(a)}
          />
          <span title={!canInstall ? "You do not have permission to reinstall (needs settings.reinstall)" : busyInstalling ? "Installing…" : cur !== "offline" && cur !== "crashed" && cur !== "unknown" && cur !== undefined ? "Stop the server first" : undefined}>
            <button
              data-testid="install-button"
              disabled={!canInstall || busyInstalling || (cur !== "offline" && cur !== "crashed" && cur !== "unknown" && cur !== undefined)}
              onClick={() => (server?.installed ? setConfirmReinstall(true) : void install())}
            >
              {busyInstalling ? "Installing…" : server?.installed ? "Reinstall" : "Install"}
            </button>
          </span>
        </div>
      </header>

      {link === "reconnecting" && (
        <div className={styles.banner} data-testid="reconnecting" role="status">
          <span className={styles.spinner} aria-hidden="true" /> Live console disconnected: reconnecting…
        </div>
      )}
      {link === "denied" && (
        <div className={`${styles.banner} ${styles.bannerWarn}`} data-testid="live-denied" role="status">
          Live console unavailable: {linkDetail ?? "access refused"}. Showing periodic updates instead.
          <button onClick={() => live.current?.start()}>Retry</button>
        </div>
      )}
      {busyInstalling && (
        <div className={styles.progress} data-testid="install-progress" role="progressbar" aria-label="Installing">
          <div className={styles.progressBar} />
        </div>
      )}

      <nav className={styles.tabs} role="tablist">
        {TABS.filter((t) => !t.admin || isAdmin).map((t) => {
          const allowed = !t.perm || can(permissions, t.perm, isAdmin);
          return (
            <button
              key={t.id}
              role="tab"
              aria-selected={tab === t.id}
              data-testid={`tab-${t.id}`}
              className={tab === t.id ? styles.tabActive : styles.tab}
              disabled={!allowed}
              title={allowed ? undefined : `Needs ${t.perm}`}
              onClick={() => {
                setTab(t.id);
                navigate(t.id === "console" ? `/servers/${id}` : `/servers/${id}/${t.id}`, true);
              }}
            >
              {t.label}
            </button>
          );
        })}
      </nav>

      <div hidden={tab !== "console"} className={styles.consoleGrid}>
        <div className={styles.consoleCol}>
          <Console ref={term} />
          <CommandInput onSend={sendCommand} disabled={consoleDisabledReason !== undefined} reason={consoleDisabledReason} />
        </div>
        <div className={styles.charts}>
          <Chart title="CPU" testid="chart-cpu" points={series.cpu} format={(v) => `${v.toFixed(1)}%`} max={server?.limits?.cpu_pct || undefined} />
          <Chart title="Memory" testid="chart-memory" points={series.mem} format={(v) => formatBytes(v)} max={memLimit} />
          {series.rx.length > 0 && (
            <>
              <Chart title="Network in" testid="chart-rx" points={series.rx} format={(v) => formatBytes(v) + "/s"} />
              <Chart title="Network out" testid="chart-tx" points={series.tx} format={(v) => formatBytes(v) + "/s"} />
            </>
          )}
          <dl className={styles.facts}>
            <dt>Uptime</dt>
            <dd>{formatDuration(stats?.uptime_ms)}</dd>
            <dt>Disk</dt>
            <dd>{formatBytes(stats?.disk_bytes)}</dd>
            <dt>Live link</dt>
            <dd data-testid="link-status">{link}</dd>
          </dl>
        </div>
      </div>
      {tab === "startup" && <StartupTab id={id} canEdit={can(permissions, "startup.update", isAdmin)} isAdmin={isAdmin} />}
      {tab === "users" && <SubusersTab id={id} permissions={permissions} isAdmin={isAdmin} />}
      {tab === "activity" && <ActivityTab id={id} />}
      {tab === "settings" && isAdmin && server && <SettingsTab server={server} onSaved={(s) => setServer((cur) => ({ ...s, permissions: s.permissions ?? cur?.permissions }))} />}

      <Dialog
        open={confirmReinstall}
        title="Reinstall the server?"
        onClose={() => setConfirmReinstall(false)}
        actions={
          <>
            <button onClick={() => setConfirmReinstall(false)}>Cancel</button>
            <button className="danger" data-testid="confirm-install" onClick={() => void install()}>
              Reinstall
            </button>
          </>
        }
      >
        The template's install script runs again. Files it manages may be overwritten.
      </Dialog>
    </div>
  );
}
