import { useCallback, useEffect, useState, type FormEvent } from "react";
import qrcode from "qrcode-generator";
import { api, fieldErrors, type ApiKey, type Page, type User } from "../api";
import { Card, Field, SkeletonRows, formatDate } from "../components/ui";
import { useToast } from "../toast";
import styles from "./AccountPage.module.css";

export function qrSvg(text: string): string {
  const qr = qrcode(0, "M");
  qr.addData(text);
  qr.make();
  return qr.createSvgTag({ cellSize: 4, margin: 4, scalable: true });
}

function PasswordCard() {
  const toast = useToast();
  const [cur, setCur] = useState("");
  const [next, setNext] = useState("");
  const [again, setAgain] = useState("");
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [busy, setBusy] = useState(false);
  const mismatch = again !== "" && next !== again;
  const short = next !== "" && new TextEncoder().encode(next).length < 12;
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setErrors({});
    try {
      await api.post("/me/password", { current_password: cur, new_password: next });
      api.signOut("Password changed: every session was ended. Sign in with your new password.");
    } catch (err) {
      setErrors(fieldErrors(err));
      toast.error(err, "Password not changed");
    } finally {
      setBusy(false);
    }
  };
  return (
    <Card title="Password">
      <form onSubmit={submit} className={styles.form}>
        <Field label="Current password" error={errors.current_password}>
          <input type="password" autoComplete="current-password" value={cur} onChange={(e) => setCur(e.target.value)} />
        </Field>
        <Field label="New password" error={errors.new_password ?? (short ? "At least 12 characters" : undefined)} hint="12–72 bytes. Changing it signs you out everywhere.">
          <input type="password" autoComplete="new-password" value={next} onChange={(e) => setNext(e.target.value)} />
        </Field>
        <Field label="Repeat new password" error={mismatch ? "Does not match" : undefined}>
          <input type="password" autoComplete="new-password" value={again} onChange={(e) => setAgain(e.target.value)} />
        </Field>
        <button className="primary" disabled={busy || !cur || !next || mismatch || short || next !== again}>
          Change password
        </button>
      </form>
    </Card>
  );
}

function TwoFactorCard({ me, reload }: { me: User; reload: () => void }) {
  const toast = useToast();
  const [enrol, setEnrol] = useState<{ secret: string; otpauth_uri: string } | null>(null);
  const [code, setCode] = useState("");
  const [codes, setCodes] = useState<string[] | null>(null);
  const [pw, setPw] = useState("");
  const [busy, setBusy] = useState(false);
  const start = async () => {
    setBusy(true);
    try {
      setEnrol(await api.post<{ secret: string; otpauth_uri: string }>("/me/totp"));
    } catch (e) {
      toast.error(e, "Could not start 2FA");
    } finally {
      setBusy(false);
    }
  };
  const confirm = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    try {
      const r = await api.post<{ recovery_codes: string[] }>("/me/totp/confirm", { code: code.trim() });
      setCodes(r.recovery_codes);
      setEnrol(null);
      setCode("");
      reload();
    } catch (err) {
      toast.error(err, "Code not accepted");
    } finally {
      setBusy(false);
    }
  };
  const disable = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    try {
      await api.del("/me/totp", { password: pw, code: code.trim() });
      toast.success("Two-factor authentication is off");
      setPw("");
      setCode("");
      reload();
    } catch (err) {
      toast.error(err, "2FA not turned off");
    } finally {
      setBusy(false);
    }
  };
  return (
    <Card title="Two-factor authentication">
      {codes && (
        <div className={styles.codes} data-testid="recovery-codes">
          <p>
            <strong>2FA is on.</strong> Save these recovery codes now: each works once instead of a code, and they are not shown again.
          </p>
          <ul>
            {codes.map((c) => (
              <li key={c} className="mono">
                {c}
              </li>
            ))}
          </ul>
          <button onClick={() => void navigator.clipboard?.writeText(codes.join("\n"))}>Copy</button> <button onClick={() => setCodes(null)}>Done</button>
        </div>
      )}
      {!codes && me.totp_enabled && (
        <form onSubmit={disable} className={styles.form}>
          <p className="muted">2FA is enabled. To turn it off, confirm with your password and a code (or a recovery code).</p>
          <Field label="Password">
            <input data-testid="totp-disable-password" type="password" autoComplete="current-password" value={pw} onChange={(e) => setPw(e.target.value)} />
          </Field>
          <Field label="Code">
            <input data-testid="totp-disable-code" autoComplete="one-time-code" value={code} onChange={(e) => setCode(e.target.value)} />
          </Field>
          <button className="danger" disabled={busy || !pw || !code} data-testid="totp-disable">
            Turn off 2FA
          </button>
        </form>
      )}
      {!codes && !me.totp_enabled && !enrol && (
        <>
          <p className="muted">Protect your account with a code from an authenticator app.</p>
          <button className="primary" onClick={() => void start()} disabled={busy} data-testid="totp-enable">
            Enable 2FA
          </button>
        </>
      )}
      {enrol && (
        <form onSubmit={confirm} className={styles.form}>
          <p>Scan this QR code with your authenticator app, then enter the code it shows.</p>
          <div className={styles.qr} data-testid="totp-qr" dangerouslySetInnerHTML={{ __html: qrSvg(enrol.otpauth_uri) }} />
          <p className="muted">
            Or enter the key by hand: <code data-testid="totp-secret">{enrol.secret}</code>
          </p>
          <Field label="Code">
            <input data-testid="totp-code" inputMode="numeric" autoComplete="one-time-code" maxLength={6} value={code} onChange={(e) => setCode(e.target.value.replace(/\D/g, ""))} />
          </Field>
          <button className="primary" disabled={busy || code.length !== 6}>
            Confirm
          </button>{" "}
          <button type="button" onClick={() => setEnrol(null)}>
            Cancel
          </button>
        </form>
      )}
    </Card>
  );
}

function ApiKeysCard() {
  const toast = useToast();
  const [keys, setKeys] = useState<ApiKey[] | null>(null);
  const [name, setName] = useState("");
  const [scopes, setScopes] = useState("");
  const [days, setDays] = useState("");
  const [created, setCreated] = useState<string | null>(null);
  const load = useCallback(() => {
    api
      .get<Page<ApiKey> | ApiKey[]>("/me/api-keys")
      .then((d) => setKeys(Array.isArray(d) ? d : d.data))
      .catch((e) => {
        toast.error(e, "Could not load API keys");
        setKeys([]);
      });
  }, [toast]);
  useEffect(load, [load]);
  const create = async (e: FormEvent) => {
    e.preventDefault();
    try {
      const body: Record<string, unknown> = { name };
      const sc = scopes.split(/[\s,]+/).filter(Boolean);
      if (sc.length) body.scopes = sc;
      if (days) body.expires_in_days = Number(days);
      const k = await api.post<ApiKey>("/me/api-keys", body);
      setCreated(k.key ?? null);
      setName("");
      setScopes("");
      setDays("");
      load();
    } catch (err) {
      toast.error(err, "Key not created");
    }
  };
  const revoke = async (id: string) => {
    try {
      await api.del(`/me/api-keys/${id}`);
      toast.success("Key revoked");
      load();
    } catch (err) {
      toast.error(err, "Key not revoked");
    }
  };
  return (
    <Card title="API keys">
      {created && (
        <div className={styles.codes}>
          <p>
            <strong>Copy your new key now</strong>: it is not shown again.
          </p>
          <code className={styles.secret} data-testid="api-key-created">
            {created}
          </code>
          <button onClick={() => void navigator.clipboard?.writeText(created)}>Copy</button> <button onClick={() => setCreated(null)}>Done</button>
        </div>
      )}
      {keys === null ? (
        <SkeletonRows rows={2} cols={3} />
      ) : keys.length === 0 ? (
        <p className="muted">No API keys.</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th>Name</th>
              <th>Prefix</th>
              <th>Scopes</th>
              <th>Last used</th>
              <th>Expires</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {keys.map((k) => (
              <tr key={k.id}>
                <td>{k.name}</td>
                <td className="mono">{k.prefix}</td>
                <td className="mono" style={{ fontSize: 12 }}>
                  {k.scopes?.join(", ") || "all"}
                </td>
                <td>{formatDate(k.last_used_at)}</td>
                <td>{k.expires_at ? formatDate(k.expires_at) : "never"}</td>
                <td>
                  <button className="danger" onClick={() => void revoke(k.id)}>
                    Revoke
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <form onSubmit={create} className={styles.inline}>
        <Field label="Name">
          <input value={name} onChange={(e) => setName(e.target.value)} placeholder="ci-deploy" />
        </Field>
        <Field label="Scopes (optional)" hint="e.g. control.console admin">
          <input value={scopes} onChange={(e) => setScopes(e.target.value)} />
        </Field>
        <Field label="Expires in days">
          <input inputMode="numeric" value={days} onChange={(e) => setDays(e.target.value.replace(/\D/g, ""))} placeholder="never" />
        </Field>
        <button className="primary" disabled={!name}>
          Create key
        </button>
      </form>
    </Card>
  );
}

export default function AccountPage() {
  const toast = useToast();
  const [me, setMe] = useState<User | null>(null);
  const load = useCallback(() => {
    api
      .get<User>("/me")
      .then(setMe)
      .catch((e) => toast.error(e, "Could not load your account"));
  }, [toast]);
  useEffect(load, [load]);
  return (
    <div className={styles.grid}>
      <Card title="Account">
        {me ? (
          <dl className={styles.dl}>
            <dt>Username</dt>
            <dd>{me.username}</dd>
            <dt>Email</dt>
            <dd>{me.email}</dd>
            <dt>Role</dt>
            <dd>{me.role}</dd>
          </dl>
        ) : (
          <SkeletonRows rows={3} cols={2} />
        )}
      </Card>
      <PasswordCard />
      {me ? <TwoFactorCard me={me} reload={load} /> : <Card title="Two-factor authentication"><SkeletonRows rows={2} cols={1} /></Card>}
      <ApiKeysCard />
    </div>
  );
}
