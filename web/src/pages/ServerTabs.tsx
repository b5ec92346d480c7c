import { useCallback, useEffect, useState, type FormEvent } from "react";
import { api, fieldErrors, type AuditEntry, type Page, type Server, type StartupVariable, type Subuser } from "../api";
import { Card, Dialog, Field, SkeletonRows, formatDate } from "../components/ui";
import { navigate } from "../router";
import { can } from "../perms";
import { useToast } from "../toast";

export function StartupTab({ id, canEdit, isAdmin }: { id: string; canEdit: boolean; isAdmin: boolean }) {
  const toast = useToast();
  const [data, setData] = useState<{ startup?: string; variables: StartupVariable[] } | null>(null);
  const [values, setValues] = useState<Record<string, string>>({});
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [busy, setBusy] = useState(false);
  const load = useCallback(() => {
    api
      .get<{ startup?: string; variables?: StartupVariable[] }>(`/servers/${id}/startup`)
      .then((d) => {
        const vars = d.variables ?? [];
        setData({ startup: d.startup, variables: vars });
        setValues(Object.fromEntries(vars.map((v) => [v.name, v.value ?? ""])));
      })
      .catch((e) => {
        toast.error(e, "Could not load startup settings");
        setData({ variables: [] });
      });
  }, [id, toast]);
  useEffect(load, [load]);

  const save = async (e: FormEvent) => {
    e.preventDefault();
    if (!data) return;
    const changed: Record<string, string> = {};
    for (const v of data.variables) {
      const nv = values[v.name] ?? "";
      if (v.secret && nv === "") continue; // untouched secret
      if (nv !== (v.value ?? "")) changed[v.name] = nv;
    }
    if (Object.keys(changed).length === 0) {
      toast.show("Nothing changed", "info");
      return;
    }
    setBusy(true);
    setErrors({});
    try {
      await api.patch(`/servers/${id}/startup`, { variables: changed });
      toast.success("Startup variables saved; they apply at the next start");
      load();
    } catch (err) {
      setErrors(fieldErrors(err));
      toast.error(err, "Could not save");
    } finally {
      setBusy(false);
    }
  };

  if (!data) return <SkeletonRows rows={4} cols={2} />;
  return (
    <Card title="Startup">
      {data.startup && (
        <Field label="Startup command">
          <pre className="mono" data-testid="startup-command" style={{ margin: 0, padding: 8, background: "var(--bg)", borderRadius: 6 }}>
            {data.startup}
          </pre>
        </Field>
      )}
      <form onSubmit={save} data-testid="startup-form">
        {data.variables.length === 0 && <p className="muted">This template has no variables.</p>}
        {data.variables.map((v) => {
          const editable = canEdit && (isAdmin || v.user_editable !== false);
          const label = `${v.name}${v.required ? " *" : ""}`;
          const set = (val: string) => setValues((s) => ({ ...s, [v.name]: val }));
          const val = values[v.name] ?? "";
          let input;
          if (v.type === "boolean") {
            input = (
              <select value={val} onChange={(e) => set(e.target.value)} disabled={!editable} data-testid={`var-${v.name}`}>
                <option value="">(unset)</option>
                <option value="true">true</option>
                <option value="false">false</option>
              </select>
            );
          } else if (v.type === "enum" && v.options?.length) {
            input = (
              <select value={val} onChange={(e) => set(e.target.value)} disabled={!editable} data-testid={`var-${v.name}`}>
                {!v.required && <option value="">(unset)</option>}
                {v.options.map((o) => (
                  <option key={o} value={o}>
                    {o}
                  </option>
                ))}
              </select>
            );
          } else {
            input = (
              <input
                data-testid={`var-${v.name}`}
                type={v.secret ? "password" : "text"}
                inputMode={v.type === "integer" ? "numeric" : undefined}
                placeholder={v.secret ? "(secret: leave empty to keep)" : undefined}
                value={val}
                onChange={(e) => set(e.target.value)}
                disabled={!editable}
                aria-invalid={errors[v.name] ? true : undefined}
              />
            );
          }
          return (
            <Field key={v.name} label={label} error={errors[v.name]} hint={(v.description ?? "") + (editable ? "" : " (read-only)")}>
              {input}
            </Field>
          );
        })}
        {Object.entries(errors)
          .filter(([k]) => !data.variables.some((v) => v.name === k))
          .map(([k, m]) => (
            <p key={k} className="field-error">
              {k}: {m}
            </p>
          ))}
        {canEdit && data.variables.length > 0 && (
          <button className="primary" type="submit" disabled={busy} data-testid="startup-save">
            {busy ? "Saving…" : "Save"}
          </button>
        )}
      </form>
    </Card>
  );
}

const SERVER_PERMS = [
  "websocket.connect",
  "control.console",
  "control.start",
  "control.stop",
  "control.restart",
  "control.kill",
  "startup.read",
  "startup.update",
  "user.read",
  "user.create",
  "user.update",
  "user.delete",
  "settings.rename",
  "settings.reinstall",
  "activity.read",
  "allocation.read",
  "file.read",
  "backup.read",
  "schedule.read",
];

function PermPicker({ value, onChange, mine, isAdmin }: { value: string[]; onChange: (v: string[]) => void; mine?: string[]; isAdmin: boolean }) {
  return (
    <div style={{ display: "grid", gridTemplateColumns: "repeat(auto-fill, minmax(170px, 1fr))", gap: 4 }}>
      {SERVER_PERMS.map((p) => {
        const grantable = can(mine, p, isAdmin);
        return (
          <label key={p} style={{ fontSize: 13, display: "flex", gap: 6, alignItems: "center" }} title={grantable ? undefined : "You do not hold this permission"}>
            <input
              type="checkbox"
              data-testid={`perm-${p}`}
              checked={value.includes(p)}
              disabled={!grantable}
              onChange={(e) => onChange(e.target.checked ? [...value, p] : value.filter((x) => x !== p))}
            />
            <span className="mono">{p}</span>
          </label>
        );
      })}
    </div>
  );
}

export function SubusersTab({ id, permissions, isAdmin }: { id: string; permissions?: string[]; isAdmin: boolean }) {
  const toast = useToast();
  const [list, setList] = useState<Subuser[] | null>(null);
  const [who, setWho] = useState("");
  const [perms, setPerms] = useState<string[]>(["websocket.connect", "control.console"]);
  const [editing, setEditing] = useState<Record<string, string[]>>({});
  const [busy, setBusy] = useState(false);
  const load = useCallback(() => {
    api
      .get<Page<Subuser> | Subuser[]>(`/servers/${id}/users`)
      .then((d) => setList(Array.isArray(d) ? d : d.data))
      .catch((e) => {
        toast.error(e, "Could not load subusers");
        setList([]);
      });
  }, [id, toast]);
  useEffect(load, [load]);

  const add = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    try {
      const body: Record<string, unknown> = { permissions: perms };
      const w = who.trim();
      if (/^[0-9a-f-]{36}$/i.test(w)) body.user_id = w;
      else if (w.includes("@")) body.email = w;
      else body.username = w;
      await api.post(`/servers/${id}/users`, body);
      toast.success("Subuser added");
      setWho("");
      load();
    } catch (err) {
      toast.error(err, "Could not add the subuser");
    } finally {
      setBusy(false);
    }
  };
  const save = async (uid: string) => {
    try {
      await api.patch(`/servers/${id}/users/${uid}`, { permissions: editing[uid] ?? [] });
      toast.success("Permissions saved");
      setEditing(({ [uid]: _drop, ...rest }) => rest);
      load();
    } catch (err) {
      toast.error(err, "Could not save permissions");
    }
  };
  const remove = async (uid: string) => {
    try {
      await api.del(`/servers/${id}/users/${uid}`);
      toast.success("Subuser removed");
      load();
    } catch (err) {
      toast.error(err, "Could not remove the subuser");
    }
  };

  return (
    <Card title="Subusers">
      {list === null ? (
        <SkeletonRows rows={3} cols={3} />
      ) : list.length === 0 ? (
        <p className="muted">No subusers.</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th>User</th>
              <th>Permissions</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {list.map((s) => (
              <tr key={s.user_id} data-testid="subuser-row">
                <td>
                  {s.username ?? s.user_id}
                  <div className="muted" style={{ fontSize: 12 }}>
                    {s.email}
                  </div>
                </td>
                <td>
                  {editing[s.user_id] ? (
                    <PermPicker value={editing[s.user_id] ?? []} onChange={(v) => setEditing((m) => ({ ...m, [s.user_id]: v }))} mine={permissions} isAdmin={isAdmin} />
                  ) : (
                    <span className="mono" style={{ fontSize: 12 }}>
                      {s.permissions.join(", ") || "none"}
                    </span>
                  )}
                </td>
                <td style={{ whiteSpace: "nowrap" }}>
                  {editing[s.user_id] ? (
                    <button className="primary" onClick={() => void save(s.user_id)}>
                      Save
                    </button>
                  ) : (
                    <button disabled={!can(permissions, "user.update", isAdmin)} onClick={() => setEditing((m) => ({ ...m, [s.user_id]: s.permissions }))}>
                      Edit
                    </button>
                  )}{" "}
                  <button className="danger" disabled={!can(permissions, "user.delete", isAdmin)} onClick={() => void remove(s.user_id)}>
                    Remove
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {can(permissions, "user.create", isAdmin) && (
        <form onSubmit={add} style={{ marginTop: 16 }}>
          <h3>Invite a user</h3>
          <Field label="Email or username">
            <input data-testid="subuser-email" value={who} onChange={(e) => setWho(e.target.value)} placeholder="player@example.com or player" />
          </Field>
          <PermPicker value={perms} onChange={setPerms} mine={permissions} isAdmin={isAdmin} />
          <button className="primary" type="submit" disabled={busy || !who.trim()} style={{ marginTop: 12 }} data-testid="subuser-add">
            Add subuser
          </button>
        </form>
      )}
    </Card>
  );
}

export function AuditTable({ rows }: { rows: AuditEntry[] }) {
  return (
    <table>
      <thead>
        <tr>
          <th>When</th>
          <th>Who</th>
          <th>Action</th>
          <th>Target</th>
          <th>From</th>
        </tr>
      </thead>
      <tbody>
        {rows.map((r) => (
          <tr key={r.id} data-testid="audit-row">
            <td style={{ whiteSpace: "nowrap", fontSize: 13 }}>{formatDate(r.at)}</td>
            <td>{r.actor_label ?? r.actor_user_id ?? "system"}</td>
            <td className="mono">{r.action}</td>
            <td className="mono" style={{ fontSize: 12 }} title={r.metadata ? JSON.stringify(r.metadata) : undefined}>
              {r.target_type ? `${r.target_type} ` : ""}
              {r.target_id?.slice(0, 12) ?? ""}
              {r.metadata && Object.keys(r.metadata).length > 0 && <span className="muted"> {JSON.stringify(r.metadata).slice(0, 80)}</span>}
            </td>
            <td className="mono muted" style={{ fontSize: 12 }}>
              {r.ip ?? ""}
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function usePaged<T>(path: string | null, perPage = 50) {
  const toast = useToast();
  const [page, setPage] = useState(1);
  const [data, setData] = useState<Page<T> | null>(null);
  const reload = useCallback(() => {
    if (!path) return;
    const sep = path.includes("?") ? "&" : "?";
    api
      .get<Page<T>>(`${path}${sep}page=${page}&per_page=${perPage}`)
      .then(setData)
      .catch((e) => {
        toast.error(e);
        setData({ data: [] });
      });
  }, [path, page, perPage, toast]);
  useEffect(reload, [reload]);
  const total = data?.pagination?.total ?? 0;
  const pages = Math.max(1, Math.ceil(total / perPage));
  const pager = (
    <div style={{ display: "flex", gap: 8, alignItems: "center", marginTop: 12 }}>
      <button disabled={page <= 1} onClick={() => setPage(page - 1)}>
        Previous
      </button>
      <span className="muted" style={{ fontSize: 13 }}>
        Page {page} of {pages}
      </span>
      <button disabled={page >= pages} onClick={() => setPage(page + 1)}>
        Next
      </button>
    </div>
  );
  return { data, reload, pager, setPage };
}

export function ActivityTab({ id }: { id: string }) {
  const { data, pager } = usePaged<AuditEntry>(`/servers/${id}/activity`);
  return (
    <Card title="Activity">
      {data === null ? <SkeletonRows rows={5} cols={4} /> : data.data.length === 0 ? <p className="muted">No activity yet.</p> : <AuditTable rows={data.data} />}
      {pager}
    </Card>
  );
}

/** Admin-only: rename, limits, suspend, delete. */
export function SettingsTab({ server, onSaved }: { server: Server; onSaved: (s: Server) => void }) {
  const toast = useToast();
  const [name, setName] = useState(server.name);
  const [description, setDescription] = useState(server.description ?? "");
  const [limits, setLimits] = useState({
    memory_mb: String(server.limits?.memory_mb ?? 0),
    disk_mb: String(server.limits?.disk_mb ?? 0),
    cpu_pct: String(server.limits?.cpu_pct ?? 0),
    pids: String(server.limits?.pids ?? 0),
  });
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [busy, setBusy] = useState(false);
  const [confirmDelete, setConfirmDelete] = useState(false);
  const [force, setForce] = useState(false);

  const patch = async (body: Record<string, unknown>, done: string) => {
    setBusy(true);
    setErrors({});
    try {
      const s = await api.patch<Server>(`/servers/${server.id}`, body);
      toast.success(done);
      if (s && typeof s === "object" && "id" in s) onSaved(s);
    } catch (err) {
      setErrors(fieldErrors(err));
      toast.error(err, "Not saved");
    } finally {
      setBusy(false);
    }
  };
  const save = (e: FormEvent) => {
    e.preventDefault();
    const l = Object.fromEntries(Object.entries(limits).map(([k, v]) => [k, Number(v) || 0]));
    void patch({ name, description, limits: l }, "Server saved");
  };
  const remove = async () => {
    setConfirmDelete(false);
    try {
      await api.del(`/servers/${server.id}${force ? "?force=true" : ""}`);
      toast.success(`Deleted ${server.name}`);
      navigate("/");
    } catch (err) {
      toast.error(err, "Not deleted");
    }
  };
  return (
    <Card title="Settings (admin)">
      <form onSubmit={save} style={{ maxWidth: 560 }}>
        <Field label="Name" error={errors.name}>
          <input data-testid="settings-name" value={name} maxLength={191} onChange={(e) => setName(e.target.value)} />
        </Field>
        <Field label="Description" error={errors.description}>
          <textarea rows={2} value={description} maxLength={2000} onChange={(e) => setDescription(e.target.value)} />
        </Field>
        <div style={{ display: "grid", gridTemplateColumns: "repeat(auto-fill, minmax(120px, 1fr))", gap: 8 }}>
          {(
            [
              ["memory_mb", "Memory (MiB)"],
              ["disk_mb", "Disk (MiB)"],
              ["cpu_pct", "CPU (% of a core)"],
              ["pids", "Processes"],
            ] as const
          ).map(([k, label]) => (
            <Field key={k} label={label} error={errors[k]} hint="0 = unlimited">
              <input inputMode="numeric" value={limits[k]} onChange={(e) => setLimits({ ...limits, [k]: e.target.value.replace(/\D/g, "") })} />
            </Field>
          ))}
        </div>
        <button className="primary" disabled={busy || !name.trim()} data-testid="settings-save">
          Save
        </button>
      </form>
      <h3 style={{ marginTop: 24 }}>Danger zone</h3>
      <div style={{ display: "flex", gap: 8, flexWrap: "wrap", alignItems: "center" }}>
        <button disabled={busy} onClick={() => void patch({ suspended: !server.suspended }, server.suspended ? "Unsuspended" : "Suspended")} data-testid="settings-suspend">
          {server.suspended ? "Unsuspend" : "Suspend (kills a running game, refuses power actions)"}
        </button>
        <button className="danger" onClick={() => setConfirmDelete(true)} data-testid="settings-delete">
          Delete server
        </button>
      </div>
      <Dialog
        open={confirmDelete}
        title={`Delete ${server.name}?`}
        onClose={() => setConfirmDelete(false)}
        actions={
          <>
            <button onClick={() => setConfirmDelete(false)}>Cancel</button>
            <button className="danger" data-testid="confirm-delete" onClick={() => void remove()}>
              Delete
            </button>
          </>
        }
      >
        <p>The node removes the server's files. This cannot be undone.</p>
        <label style={{ display: "flex", gap: 6, alignItems: "center" }}>
          <input type="checkbox" checked={force} onChange={(e) => setForce(e.target.checked)} /> Also when the node is down (force)
        </label>
      </Dialog>
    </Card>
  );
}
