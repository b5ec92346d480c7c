import { useCallback, useEffect, useState, type FormEvent } from "react";
import { api, fieldErrors, type AdminUser, type Allocation, type AuditEntry, type Node, type Page, type TemplateSummary } from "../api";
import { useAuth } from "../auth";
import { Card, Dialog, Field, SkeletonRows, formatDate } from "../components/ui";
import { Link } from "../router";
import { useAttempt, useToast } from "../toast";
import { AuditTable, usePaged } from "./ServerTabs";
import styles from "./AdminPage.module.css";

function JoinCommand({ token, hint }: { token: string; hint?: string }) {
  const cmd = `WARDEN_JOIN_TOKEN='${token}' warden-agent --nats-url nats://${window.location.hostname}:4222 --data-dir /var/lib/warden`;
  return (
    <div className={styles.join} data-testid="join-command">
      <p>
        Run this once on the new game host (the token works once, for 24 hours){hint ? `: ${hint}` : ""}.
      </p>
      <pre className="mono">{cmd}</pre>
      <button onClick={() => void navigator.clipboard?.writeText(cmd)}>Copy</button>
    </div>
  );
}

function Allocations({ node }: { node: Node }) {
  const toast = useToast();
  const attempt = useAttempt();
  const [list, setList] = useState<Allocation[] | null>(null);
  const [ip, setIp] = useState("127.0.0.1");
  const [ports, setPorts] = useState("");
  const load = useCallback(() => {
    api
      .get<Page<Allocation> | Allocation[]>(`/nodes/${node.id}/allocations?per_page=100`)
      .then((d) => setList(Array.isArray(d) ? d : d.data))
      .catch((e) => {
        toast.error(e, "Could not load allocations");
        setList([]);
      });
  }, [node.id, toast]);
  useEffect(load, [load]);
  const add = async (e: FormEvent) => {
    e.preventDefault();
    const ps = ports
      .split(/[\s,]+/)
      .filter(Boolean)
      .map((p) => (/^\d+$/.test(p) ? Number(p) : p));
    try {
      await api.post(`/nodes/${node.id}/allocations`, { ip, ports: ps });
      setPorts("");
      toast.success("Ports added");
      load();
    } catch (err) {
      toast.error(err, "Ports not added");
    }
  };
  const remove = async (a: Allocation) => {
    if (await attempt(() => api.del(`/nodes/${node.id}/allocations/${a.id}`), "Allocation not removed")) load();
  };
  return (
    <div className={styles.allocs}>
      {list === null ? (
        <SkeletonRows rows={2} cols={3} />
      ) : (
        <div className={styles.chips}>
          {list.length === 0 && <span className="muted">No allocations.</span>}
          {list.map((a) => (
            <span key={a.id} className={`${styles.chip} ${a.server_id ? styles.used : ""}`} title={a.server_id ? `Used by ${a.server_id}` : "Free"}>
              <span className="mono">
                {a.ip}:{a.port}
              </span>
              {a.server_id ? (
                <Link to={`/servers/${a.server_id}`}>used</Link>
              ) : (
                <button aria-label={`Remove ${a.ip}:${a.port}`} onClick={() => void remove(a)}>
                  ×
                </button>
              )}
            </span>
          ))}
        </div>
      )}
      <form onSubmit={add} className={styles.inline}>
        <input aria-label="IP" value={ip} onChange={(e) => setIp(e.target.value)} style={{ width: 140 }} />
        <input aria-label="Ports" placeholder="25565, 27015-27020" value={ports} onChange={(e) => setPorts(e.target.value)} />
        <button disabled={!ports.trim()}>Add ports</button>
      </form>
    </div>
  );
}

function Nodes() {
  const toast = useToast();
  const attempt = useAttempt();
  const [nodes, setNodes] = useState<Node[] | null>(null);
  const [open, setOpen] = useState<string | null>(null);
  const [join, setJoin] = useState<{ token: string; hint?: string } | null>(null);
  const [form, setForm] = useState({ name: "", fqdn: "", memory_mb: "4096", disk_mb: "20480" });
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [creating, setCreating] = useState(false);
  const load = useCallback(() => {
    api
      .get<Page<Node>>("/nodes?per_page=100&sort=name")
      .then((p) => setNodes(p.data))
      .catch((e) => {
        toast.error(e, "Could not load nodes");
        setNodes([]);
      });
  }, [toast]);
  useEffect(load, [load]);
  useEffect(() => {
    const t = window.setInterval(load, 10_000);
    return () => window.clearInterval(t);
  }, [load]);
  const create = async (e: FormEvent) => {
    e.preventDefault();
    setErrors({});
    try {
      const r = await api.post<{ node: Node; join_token: string; join_hint?: string }>("/nodes", {
        name: form.name,
        fqdn: form.fqdn,
        memory_mb: Number(form.memory_mb),
        disk_mb: Number(form.disk_mb),
      });
      setJoin({ token: r.join_token, hint: r.join_hint });
      setCreating(false);
      load();
    } catch (err) {
      setErrors(fieldErrors(err));
      toast.error(err, "Node not created");
    }
  };
  const newToken = async (n: Node) => {
    try {
      const r = await api.post<{ join_token: string; join_hint?: string }>(`/nodes/${n.id}/join-token`);
      setJoin({ token: r.join_token, hint: r.join_hint });
    } catch (err) {
      toast.error(err, "No token");
    }
  };
  const maintenance = async (n: Node) => {
    if (await attempt(() => api.patch(`/nodes/${n.id}`, { maintenance: !n.maintenance }), "Node not changed")) load();
  };
  const remove = async (n: Node) => {
    if (await attempt(() => api.del(`/nodes/${n.id}`), "Node not deleted")) load();
  };
  return (
    <Card
      title="Nodes"
      actions={
        <button className="primary" onClick={() => setCreating(true)} data-testid="node-create">
          Add node
        </button>
      }
    >
      {join && (
        <Dialog open title="Join command" onClose={() => setJoin(null)} actions={<button onClick={() => setJoin(null)}>Done</button>}>
          <JoinCommand token={join.token} hint={join.hint} />
        </Dialog>
      )}
      <Dialog
        open={creating}
        title="Add node"
        onClose={() => setCreating(false)}
        actions={
          <>
            <button onClick={() => setCreating(false)}>Cancel</button>
            <button className="primary" form="node-form" type="submit">
              Create
            </button>
          </>
        }
      >
        <form id="node-form" onSubmit={create}>
          {(
            [
              ["name", "Name"],
              ["fqdn", "Address (FQDN or IP) players connect to"],
              ["memory_mb", "Memory for servers (MiB)"],
              ["disk_mb", "Disk for servers (MiB)"],
            ] as const
          ).map(([k, label]) => (
            <Field key={k} label={label} error={errors[k]}>
              <input value={form[k]} onChange={(e) => setForm({ ...form, [k]: e.target.value })} />
            </Field>
          ))}
        </form>
      </Dialog>
      {nodes === null ? (
        <SkeletonRows rows={3} cols={5} />
      ) : nodes.length === 0 ? (
        <p className="muted">No nodes yet. Add one and run its join command on the game host.</p>
      ) : (
        <table className={styles.table}>
          <thead>
            <tr>
              <th>Name</th>
              <th>Status</th>
              <th>Capacity</th>
              <th>Servers</th>
              <th>Version</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {nodes.map((n) => (
              <NodeRow key={n.id} n={n} open={open === n.id} toggle={() => setOpen(open === n.id ? null : n.id)} onToken={() => void newToken(n)} onMaint={() => void maintenance(n)} onDelete={() => void remove(n)} />
            ))}
          </tbody>
        </table>
      )}
    </Card>
  );
}

function NodeRow({ n, open, toggle, onToken, onMaint, onDelete }: { n: Node; open: boolean; toggle: () => void; onToken: () => void; onMaint: () => void; onDelete: () => void }) {
  return (
    <>
      <tr data-testid="node-row">
        <td>
          <strong>{n.name}</strong>
          <div className="mono muted" style={{ fontSize: 12 }}>
            {n.fqdn}
          </div>
        </td>
        <td>
          <span className={n.online ? styles.online : styles.offline}>{n.online ? "online" : "offline"}</span>
          {n.maintenance && <span className={styles.maint}> maintenance</span>}
          <div className="muted" style={{ fontSize: 12 }}>
            seen {formatDate(n.last_seen_at)}
          </div>
        </td>
        <td style={{ fontSize: 13 }}>
          {n.memory_mb} MiB RAM, {n.disk_mb} MiB disk
        </td>
        <td>{n.servers ?? "–"}</td>
        <td className="mono">{n.version || "–"}</td>
        <td className={styles.rowActions}>
          <button onClick={toggle} aria-expanded={open}>
            Ports
          </button>
          <button onClick={onToken}>Join token</button>
          <button onClick={onMaint}>{n.maintenance ? "End maintenance" : "Maintenance"}</button>
          <button className="danger" onClick={onDelete} disabled={(n.servers ?? 0) > 0} title={(n.servers ?? 0) > 0 ? "The node still holds servers" : undefined}>
            Delete
          </button>
        </td>
      </tr>
      {open && (
        <tr>
          <td colSpan={6}>
            <Allocations node={n} />
          </td>
        </tr>
      )}
    </>
  );
}

function Templates() {
  const toast = useToast();
  const attempt = useAttempt();
  const { data, reload, pager } = usePaged<TemplateSummary>("/templates?sort=name");
  const [editing, setEditing] = useState<{ id?: string; body: string } | null>(null);
  const [notes, setNotes] = useState<string[] | null>(null);
  const save = async () => {
    if (!editing) return;
    let body: unknown;
    try {
      body = JSON.parse(editing.body);
    } catch (e) {
      toast.error(e, "Not valid JSON");
      return;
    }
    try {
      const r = editing.id ? await api.put<TemplateSummary>(`/templates/${editing.id}`, body) : await api.post<TemplateSummary>("/templates", body);
      toast.success(`Saved ${r.name}`);
      setNotes(r.import_notes?.length ? r.import_notes : null);
      setEditing(null);
      reload();
    } catch (err) {
      toast.error(err, "Template not saved");
    }
  };
  const edit = async (t: TemplateSummary) => {
    try {
      const full = await api.get<Record<string, unknown>>(`/templates/${t.id}`);
      const body = (full.body as unknown) ?? full;
      setEditing({ id: t.id, body: JSON.stringify(body, null, 2) });
    } catch (err) {
      toast.error(err);
    }
  };
  const remove = async (t: TemplateSummary) => {
    if (await attempt(() => api.del(`/templates/${t.id}`), "Template not deleted")) reload();
  };
  const file = async (f: File | undefined) => {
    if (!f) return;
    setEditing({ body: await f.text() });
  };
  return (
    <Card
      title="Templates"
      actions={
        <>
          <label className={styles.fileButton}>
            Import JSON / egg
            <input type="file" accept=".json,application/json" onChange={(e) => void file(e.target.files?.[0])} data-testid="template-file" />
          </label>
          <button className="primary" onClick={() => setEditing({ body: "{\n  \n}" })}>
            New template
          </button>
        </>
      }
    >
      {notes && (
        <div className={styles.join}>
          <strong>Import notes</strong>
          <ul>
            {notes.map((n) => (
              <li key={n}>{n}</li>
            ))}
          </ul>
          <button onClick={() => setNotes(null)}>Dismiss</button>
        </div>
      )}
      {editing && (
        <div className={styles.editor}>
          <p className="muted">A Warden template or a Pterodactyl egg (JSON). Eggs are converted; what cannot be carried over is listed after saving.</p>
          <textarea data-testid="template-json" className="mono" rows={16} value={editing.body} onChange={(e) => setEditing({ ...editing, body: e.target.value })} />
          <div className={styles.inline}>
            <button className="primary" onClick={() => void save()} data-testid="template-save">
              {editing.id ? "Save" : "Create"}
            </button>
            <button onClick={() => setEditing(null)}>Cancel</button>
          </div>
        </div>
      )}
      {data === null ? (
        <SkeletonRows rows={3} cols={3} />
      ) : data.data.length === 0 ? (
        <p className="muted">No templates yet. Import one (for example templates/freeciv.json).</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th>Name</th>
              <th>Slug</th>
              <th>Author</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {data.data.map((t) => (
              <tr key={t.id} data-testid="template-row">
                <td>
                  <strong>{t.name}</strong>
                  <div className="muted" style={{ fontSize: 12 }}>
                    {t.description}
                  </div>
                </td>
                <td className="mono">{t.slug}</td>
                <td>{t.author}</td>
                <td className={styles.rowActions}>
                  <button onClick={() => void edit(t)}>Edit</button>
                  <button className="danger" onClick={() => void remove(t)}>
                    Delete
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {pager}
    </Card>
  );
}

function Users() {
  const toast = useToast();
  const attempt = useAttempt();
  const { user: me } = useAuth();
  const [search, setSearch] = useState("");
  const [q, setQ] = useState("");
  const { data, reload, pager } = usePaged<AdminUser>(`/users?sort=name${q ? "&search=" + encodeURIComponent(q) : ""}`);
  const [form, setForm] = useState({ username: "", email: "", role: "user" });
  const [otp, setOtp] = useState<string | null>(null);
  const [errors, setErrors] = useState<Record<string, string>>({});
  useEffect(() => {
    const t = window.setTimeout(() => setQ(search.trim()), 300);
    return () => window.clearTimeout(t);
  }, [search]);
  const create = async (e: FormEvent) => {
    e.preventDefault();
    setErrors({});
    try {
      const r = await api.post<{ user: AdminUser; one_time_password?: string }>("/users", form);
      setOtp(r.one_time_password ? `${r.user.username}: ${r.one_time_password}` : null);
      setForm({ username: "", email: "", role: "user" });
      reload();
    } catch (err) {
      setErrors(fieldErrors(err));
      toast.error(err, "User not created");
    }
  };
  const patch = async (u: AdminUser, body: Record<string, unknown>) => {
    if (await attempt(() => api.patch(`/users/${u.id}`, body), "User not changed")) reload();
  };
  const remove = async (u: AdminUser) => {
    if (await attempt(() => api.del(`/users/${u.id}`), "User not deleted")) reload();
  };
  return (
    <Card title="Users" actions={<input type="search" placeholder="Search users" aria-label="Search users" value={search} onChange={(e) => setSearch(e.target.value)} />}>
      {otp && (
        <div className={styles.join}>
          One-time password (shown once) — <code data-testid="user-otp">{otp}</code> <button onClick={() => setOtp(null)}>Done</button>
        </div>
      )}
      {data === null ? (
        <SkeletonRows rows={3} cols={4} />
      ) : (
        <table className={styles.table}>
          <thead>
            <tr>
              <th>User</th>
              <th>Role</th>
              <th>2FA</th>
              <th>Servers</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {data.data.map((u) => (
              <tr key={u.id} data-testid="user-row" className={u.disabled ? styles.disabledRow : undefined}>
                <td>
                  <strong>{u.username}</strong> {u.disabled && <span className={styles.maint}>disabled</span>}
                  <div className="muted" style={{ fontSize: 12 }}>
                    {u.email}
                  </div>
                </td>
                <td>
                  <select value={u.role} disabled={u.id === me?.id} aria-label={`Role of ${u.username}`} onChange={(e) => void patch(u, { role: e.target.value })}>
                    <option value="user">user</option>
                    <option value="admin">admin</option>
                  </select>
                </td>
                <td>{u.totp_enabled ? "on" : "off"}</td>
                <td>{u.servers ?? 0}</td>
                <td className={styles.rowActions}>
                  <button disabled={u.id === me?.id} onClick={() => void patch(u, { disabled: !u.disabled })}>
                    {u.disabled ? "Enable" : "Disable"}
                  </button>
                  <button className="danger" disabled={u.id === me?.id || (u.servers ?? 0) > 0} title={(u.servers ?? 0) > 0 ? "Owns servers" : undefined} onClick={() => void remove(u)}>
                    Delete
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {pager}
      <form onSubmit={create} className={styles.inline} style={{ marginTop: 16 }}>
        <Field label="Username" error={errors.username}>
          <input data-testid="user-username" value={form.username} onChange={(e) => setForm({ ...form, username: e.target.value })} />
        </Field>
        <Field label="Email" error={errors.email}>
          <input data-testid="user-email" type="email" value={form.email} onChange={(e) => setForm({ ...form, email: e.target.value })} />
        </Field>
        <Field label="Role">
          <select value={form.role} onChange={(e) => setForm({ ...form, role: e.target.value })}>
            <option value="user">user</option>
            <option value="admin">admin</option>
          </select>
        </Field>
        <button className="primary" disabled={!form.username || !form.email} data-testid="user-create">
          Create user
        </button>
      </form>
    </Card>
  );
}

function Audit() {
  const [action, setAction] = useState("");
  const [q, setQ] = useState("");
  useEffect(() => {
    const t = window.setTimeout(() => setQ(action.trim()), 300);
    return () => window.clearTimeout(t);
  }, [action]);
  const { data, pager } = usePaged<AuditEntry>(`/audit${q ? "?action=" + encodeURIComponent(q) : ""}`);
  return (
    <Card title="Audit log" actions={<input placeholder="Action prefix, e.g. server.power" aria-label="Filter by action" value={action} onChange={(e) => setAction(e.target.value)} />}>
      {data === null ? <SkeletonRows rows={6} cols={4} /> : data.data.length === 0 ? <p className="muted">No entries.</p> : <AuditTable rows={data.data} />}
      {pager}
    </Card>
  );
}

export default function AdminPage({ section }: { section: string }) {
  const { user } = useAuth();
  if (user?.role !== "admin") return <Card title="Admin">Only administrators can see this page.</Card>;
  switch (section) {
    case "templates":
      return <Templates />;
    case "users":
      return <Users />;
    case "audit":
      return <Audit />;
    default:
      return <Nodes />;
  }
}
