import { useCallback, useEffect, useMemo, useRef, useState, type FormEvent } from "react";
import { api, fieldErrors, type Node, type Page, type Resources, type Server, type TemplateSummary } from "../api";
import { useAuth } from "../auth";
import { Bar, Card, Dialog, Field, SkeletonRows, StateBadge, formatBytes } from "../components/ui";
import { Link, navigate } from "../router";
import { useToast } from "../toast";
import styles from "./ServersPage.module.css";

const POLL_MS = 5000;

const PER_PAGE = 100;

export function address(s: Server): string {
  const a = s.allocation;
  if (!a || !a.port) return "–";
  return `${a.ip ?? "0.0.0.0"}:${a.port}`;
}

export function useInterval(fn: () => void, ms: number, enabled = true) {
  const ref = useRef(fn);
  ref.current = fn;
  useEffect(() => {
    if (!enabled) return;
    const id = window.setInterval(() => {
      if (document.visibilityState !== "hidden") ref.current();
    }, ms);
    return () => window.clearInterval(id);
  }, [ms, enabled]);
}

export function ServersPage() {
  const { user } = useAuth();
  const isAdmin = user?.role === "admin";
  const toast = useToast();
  const [servers, setServers] = useState<Server[] | null>(null);
  const [nodes, setNodes] = useState<Record<string, Node>>({});
  const [res, setRes] = useState<Record<string, Resources>>({});
  const [q, setQ] = useState("");
  const [stateFilter, setStateFilter] = useState("");
  const [creating, setCreating] = useState(false);
  const [pageNo, setPageNo] = useState(1);
  const [total, setTotal] = useState(0);
  const failed = useRef(false);

  const load = useCallback(async () => {
    try {
      const page = await api.get<Page<Server>>(`/servers?per_page=${PER_PAGE}&page=${pageNo}&sort=name`);
      setServers(page.data);
      setTotal(page.pagination?.total ?? page.data.length);
      failed.current = false;
      // The list carries each running server's latest figures: one
      // request draws everything (no request per row).
      const next: Record<string, Resources> = {};
      for (const s of page.data)
        if (s.resources) next[s.id] = { state: String(s.state ?? ""), stats: s.resources };
      setRes(next);
    } catch (e) {
      if (!failed.current) toast.error(e, "Could not load servers");
      failed.current = true;
      setServers((s) => s ?? []);
    }
  }, [toast, pageNo]);

  useEffect(() => {
    void load();
    if (isAdmin) {
      api
        .get<Page<Node>>("/nodes?per_page=100")
        .then((p) => setNodes(Object.fromEntries(p.data.map((n) => [n.id, n]))))
        .catch(() => undefined);
    }
  }, [load, isAdmin]);
  useInterval(() => void load(), POLL_MS);

  const shown = useMemo(() => {
    const needle = q.trim().toLowerCase();
    return (servers ?? []).filter((s) => {
      if (stateFilter && s.state !== stateFilter) return false;
      if (!needle) return true;
      const node = s.node_id ? nodes[s.node_id]?.name ?? s.node_id : "";
      return [s.name, s.id, s.description ?? "", address(s), node].some((v) => v.toLowerCase().includes(needle));
    });
  }, [servers, q, stateFilter, nodes]);

  return (
    <Card
      title="Servers"
      actions={
        <>
          <input
            type="search"
            placeholder="Search name, address, node…"
            aria-label="Search servers"
            data-testid="server-search"
            value={q}
            onChange={(e) => setQ(e.target.value)}
            className={styles.search}
          />
          <select aria-label="Filter by state" data-testid="server-filter" value={stateFilter} onChange={(e) => setStateFilter(e.target.value)}>
            <option value="">All states</option>
            {["running", "starting", "stopping", "offline", "installing", "crashed", "unknown"].map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
          {isAdmin && (
            <button className="primary" data-testid="create-server" onClick={() => setCreating(true)}>
              New server
            </button>
          )}
        </>
      }
    >
      {servers === null ? (
        <SkeletonRows rows={4} cols={5} />
      ) : servers.length === 0 ? (
        <p className="muted">
          {isAdmin ? "No servers yet. Create one from a template with “New server”." : "You do not have access to any server yet."}
        </p>
      ) : shown.length === 0 ? (
        <p className="muted">No server matches.</p>
      ) : (
        <table className={styles.table}>
          <thead>
            <tr>
              <th>Name</th>
              <th>State</th>
              <th>Address</th>
              <th>Node</th>
              <th>CPU</th>
              <th>Memory</th>
            </tr>
          </thead>
          <tbody>
            {shown.map((s) => {
              const st = res[s.id]?.stats;
              const memLimit = st?.memory_limit_bytes || (s.limits?.memory_mb ? s.limits.memory_mb * 1048576 : 0);
              const cpuMax = s.limits?.cpu_pct || 100;
              return (
                <tr
                  key={s.id}
                  data-testid="server-row"
                  data-server-id={s.id}
                  className={styles.row}
                  onClick={(e) => {
                    if ((e.target as HTMLElement).closest("a")) return;
                    navigate(`/servers/${s.id}`);
                  }}
                >
                  <td data-label="Name">
                    <Link to={`/servers/${s.id}`} className={styles.name}>
                      {s.name}
                    </Link>
                    {s.suspended && <span className={styles.tag}>suspended</span>}
                    {s.installed === false && s.state !== "installing" && <span className={styles.tag}>not installed</span>}
                  </td>
                  <td data-label="State">
                    <StateBadge state={s.state} />
                  </td>
                  <td data-label="Address" className="mono">
                    {address(s)}
                  </td>
                  <td data-label="Node">{s.node_id ? nodes[s.node_id]?.name ?? <span className="mono muted">{s.node_id.slice(0, 8)}</span> : "–"}</td>
                  <td data-label="CPU">
                    {st ? <Bar value={st.cpu_percent ?? 0} max={cpuMax} label={`${(st.cpu_percent ?? 0).toFixed(0)}%`} title="CPU" /> : <span className="muted">–</span>}
                  </td>
                  <td data-label="Memory">
                    {st ? (
                      <Bar
                        value={st.memory_bytes ?? 0}
                        max={memLimit || Math.max(st.memory_bytes ?? 0, 1) * 1.25}
                        label={formatBytes(st.memory_bytes) + (memLimit ? " / " + formatBytes(memLimit) : "")}
                        title="Memory"
                      />
                    ) : (
                      <span className="muted">–</span>
                    )}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
      {total > PER_PAGE && (
        <nav className={styles.pager} aria-label="Pages" data-testid="server-pager">
          <button disabled={pageNo <= 1} onClick={() => setPageNo((p) => p - 1)}>
            ← Previous
          </button>
          <span className="muted">
            Page {pageNo} of {Math.ceil(total / PER_PAGE)} ({total} servers; search and filter apply to this page)
          </span>
          <button disabled={pageNo * PER_PAGE >= total} onClick={() => setPageNo((p) => p + 1)}>
            Next →
          </button>
        </nav>
      )}
      {isAdmin && creating && (
        <CreateServerDialog
          nodes={Object.values(nodes)}
          onClose={() => setCreating(false)}
          onCreated={(s) => {
            setCreating(false);
            toast.success(`Created ${s.name}`);
            navigate(`/servers/${s.id}`);
          }}
        />
      )}
    </Card>
  );
}

function CreateServerDialog({ nodes, onClose, onCreated }: { nodes: Node[]; onClose: () => void; onCreated: (s: Server) => void }) {
  const toast = useToast();
  const [templates, setTemplates] = useState<TemplateSummary[] | null>(null);
  const [name, setName] = useState("");
  const [node, setNode] = useState(nodes[0]?.id ?? "");
  const [tpl, setTpl] = useState("");
  const [memory, setMemory] = useState("");
  const [busy, setBusy] = useState(false);
  const [errors, setErrors] = useState<Record<string, string>>({});
  useEffect(() => {
    api
      .get<Page<TemplateSummary>>("/templates?per_page=100&sort=name")
      .then((p) => {
        setTemplates(p.data);
        setTpl((t) => t || p.data[0]?.id || "");
      })
      .catch((e) => {
        toast.error(e, "Could not load templates");
        setTemplates([]);
      });
  }, [toast]);
  useEffect(() => {
    if (!node && nodes[0]) setNode(nodes[0].id);
  }, [nodes, node]);
  const submit = async (e?: FormEvent) => {
    e?.preventDefault();
    setBusy(true);
    setErrors({});
    try {
      const body: Record<string, unknown> = { name, node_id: node, template_id: tpl };
      if (memory) body.limits = { memory_mb: Number(memory) };
      onCreated(await api.post<Server>("/servers", body));
    } catch (err) {
      setErrors(fieldErrors(err));
      toast.error(err, "Could not create the server");
    } finally {
      setBusy(false);
    }
  };
  return (
    <Dialog
      open
      title="New server"
      onClose={onClose}
      actions={
        <>
          <button onClick={onClose}>Cancel</button>
          <button className="primary" data-testid="create-server-submit" disabled={busy || !name || !node || !tpl} onClick={() => void submit()}>
            {busy ? "Creating…" : "Create"}
          </button>
        </>
      }
    >
      <form onSubmit={submit}>
        <Field label="Name" error={errors.name}>
          <input data-testid="create-server-name" value={name} onChange={(e) => setName(e.target.value)} maxLength={191} />
        </Field>
        <Field label="Node" error={errors.node_id}>
          <select data-testid="create-server-node" value={node} onChange={(e) => setNode(e.target.value)}>
            {nodes.length === 0 && <option value="">No nodes</option>}
            {nodes.map((n) => (
              <option key={n.id} value={n.id}>
                {n.name} {n.online ? "" : "(offline)"}
              </option>
            ))}
          </select>
        </Field>
        <Field label="Template" error={errors.template_id}>
          <select data-testid="create-server-template" value={tpl} onChange={(e) => setTpl(e.target.value)} disabled={templates === null}>
            {templates?.length === 0 && <option value="">No templates: import one under Templates</option>}
            {templates?.map((t) => (
              <option key={t.id} value={t.id}>
                {t.name}
              </option>
            ))}
          </select>
        </Field>
        <Field label="Memory limit (MiB, empty = unlimited)" error={errors.memory_mb ?? errors.limits}>
          <input inputMode="numeric" value={memory} onChange={(e) => setMemory(e.target.value.replace(/\D/g, ""))} />
        </Field>
        {Object.entries(errors)
          .filter(([k]) => !["name", "node_id", "template_id", "memory_mb", "limits"].includes(k))
          .map(([k, v]) => (
            <p key={k} className="field-error">
              {k}: {v}
            </p>
          ))}
      </form>
    </Dialog>
  );
}
