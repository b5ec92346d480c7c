import { createContext, useCallback, useContext, useMemo, useRef, useState, type ReactNode } from "react";
import styles from "./toast.module.css";

export type ToastKind = "error" | "success" | "info";
interface Toast {
  id: number;
  kind: ToastKind;
  message: string;
}
interface ToastApi {
  show(message: string, kind?: ToastKind): void;
  error(err: unknown, prefix?: string): void;
  success(message: string): void;
}

const Ctx = createContext<ToastApi | null>(null);

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  if (typeof err === "string") return err;
  return "Something went wrong";
}

export function ToastProvider({ children }: { children: ReactNode }) {
  const [toasts, setToasts] = useState<Toast[]>([]);
  const next = useRef(1);
  const dismiss = useCallback((id: number) => setToasts((t) => t.filter((x) => x.id !== id)), []);
  const show = useCallback(
    (message: string, kind: ToastKind = "info") => {
      const id = next.current++;
      setToasts((t) => [...t.slice(-4), { id, kind, message }]);
      window.setTimeout(() => dismiss(id), kind === "error" ? 8000 : 4000);
    },
    [dismiss],
  );
  const value = useMemo<ToastApi>(
    () => ({
      show,
      error: (err, prefix) => show((prefix ? prefix + ": " : "") + errorMessage(err), "error"),
      success: (m) => show(m, "success"),
    }),
    [show],
  );
  return (
    <Ctx.Provider value={value}>
      {children}
      <div className={styles.stack} aria-live="polite">
        {toasts.map((t) => (
          <div
            key={t.id}
            role={t.kind === "error" ? "alert" : "status"}
            data-testid="toast"
            data-kind={t.kind}
            className={`${styles.toast} ${styles[t.kind] ?? ""}`}
          >
            <span>{t.message}</span>
            <button className={styles.close} aria-label="Dismiss" onClick={() => dismiss(t.id)}>
              ×
            </button>
          </div>
        ))}
      </div>
    </Ctx.Provider>
  );
}

export function useToast(): ToastApi {
  const c = useContext(Ctx);
  if (!c) throw new Error("useToast outside ToastProvider");
  return c;
}

/**
 * Runs an action and, when it fails, shows a toast with the API's message
 * under `failure`. Resolves to whether it worked, so callers can refresh.
 */
export function useAttempt(): (action: () => Promise<unknown>, failure: string) => Promise<boolean> {
  const toast = useToast();
  return useCallback(
    async (action: () => Promise<unknown>, failure: string) => {
      try {
        await action();
        return true;
      } catch (err) {
        toast.error(err, failure);
        return false;
      }
    },
    [toast],
  );
}
