import { useEffect, useRef, useState, type FormEvent } from "react";
import { api, ApiError, type ApiClient } from "../api";
import { ThemeToggle } from "../components/Layout";
import { errorMessage, useToast } from "../toast";
import styles from "./LoginPage.module.css";

function explain(err: unknown): string {
  if (err instanceof ApiError) {
    switch (err.code) {
      case "invalid_credentials":
        return err.message === "this account is disabled" ? "This account is disabled. Ask an administrator." : "Wrong username/email or password.";
      case "invalid_totp":
        return "That code is wrong, expired or was already used. Try the next code from your app, or a recovery code.";
      case "rate_limited":
        return "Too many failed sign-ins: " + err.message;
      default:
        return err.message;
    }
  }
  if (err instanceof TypeError) return "Cannot reach the panel. Check your connection and try again.";
  return errorMessage(err);
}

export function LoginPage({ notice, client = api }: { notice?: string; client?: ApiClient }) {
  const toast = useToast();
  const [login, setLogin] = useState("");
  const [password, setPassword] = useState("");
  const [totp, setTotp] = useState("");
  const [step, setStep] = useState<"password" | "totp">("password");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const totpRef = useRef<HTMLInputElement>(null);

  useEffect(() => {
    if (step === "totp") totpRef.current?.focus();
  }, [step]);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (busy) return;
    setBusy(true);
    setError(null);
    try {
      await client.login({ login, password, totp: step === "totp" ? totp : undefined });
    } catch (err) {
      if (err instanceof ApiError && err.code === "totp_required") {
        setStep("totp");
      } else {
        const msg = explain(err);
        setError(msg);
        toast.show(msg, "error");
        if (step === "totp") setTotp("");
      }
    } finally {
      setBusy(false);
    }
  };

  return (
    <div className={styles.wrap}>
      <div className={styles.theme}>
        <ThemeToggle />
      </div>
      <form className={styles.card} onSubmit={submit} aria-labelledby="login-title" noValidate>
        <div className={styles.brand}>
          <span className={styles.logo} aria-hidden="true" />
          <h1 id="login-title">Sign in to Warden</h1>
        </div>
        {notice && !error && (
          <p className={styles.notice} role="status" data-testid="login-notice">
            {notice}
          </p>
        )}
        {error && (
          <p className={styles.error} role="alert" data-testid="login-error">
            {error}
          </p>
        )}
        {step === "password" ? (
          <>
            <label className={styles.field}>
              <span>Username or email</span>
              <input
                data-testid="login-username"
                name="username"
                autoComplete="username"
                autoFocus
                required
                value={login}
                onChange={(e) => setLogin(e.target.value)}
              />
            </label>
            <label className={styles.field}>
              <span>Password</span>
              <input
                data-testid="login-password"
                name="password"
                type="password"
                autoComplete="current-password"
                required
                value={password}
                onChange={(e) => setPassword(e.target.value)}
              />
            </label>
          </>
        ) : (
          <>
            <p className={styles.step}>
              Two-factor authentication is on for <strong>{login}</strong>. Enter the 6-digit code from your authenticator app, or
              a recovery code.
            </p>
            <label className={styles.field}>
              <span>Authentication code</span>
              <input
                ref={totpRef}
                data-testid="login-totp"
                name="totp"
                autoComplete="one-time-code"
                inputMode="text"
                maxLength={32}
                required
                value={totp}
                onChange={(e) => setTotp(e.target.value)}
              />
            </label>
          </>
        )}
        <button
          className="primary"
          data-testid="login-submit"
          type="submit"
          disabled={busy || (step === "password" ? !login || !password : !totp.trim())}
        >
          {busy ? "Signing in…" : step === "totp" ? "Verify" : "Sign in"}
        </button>
        {step === "totp" && (
          <button
            type="button"
            className={styles.link}
            onClick={() => {
              setStep("password");
              setTotp("");
              setError(null);
            }}
          >
            Use another account
          </button>
        )}
      </form>
    </div>
  );
}
