import { useEffect, useRef, type ReactNode } from "react";
import styles from "./ui.module.css";

const stateClass: Record<string, string | undefined> = {
  running: styles.running,
  starting: styles.starting,
  stopping: styles.stopping,
  installing: styles.installing,
  crashed: styles.crashed,
  offline: styles.offline,
};

export function StateBadge({ state }: { state: string | undefined }) {
  const s = state || "unknown";
  return (
    <span data-testid="server-state" data-state={s} className={`${styles.badge} ${stateClass[s] ?? styles.unknown}`}>
      <span className={styles.dot} aria-hidden="true" />
      {s}
    </span>
  );
}

export function Skeleton({ width, height = 14, className }: { width?: number | string; height?: number; className?: string }) {
  return <span className={`${styles.skeleton} ${className ?? ""}`} style={{ width: width ?? "100%", height }} aria-hidden="true" />;
}

export function SkeletonRows({ rows = 4, cols = 4 }: { rows?: number; cols?: number }) {
  return (
    <div className={styles.skeletonRows} aria-busy="true" aria-label="Loading">
      {Array.from({ length: rows }, (_, i) => (
        <div key={i} className={styles.skeletonRow}>
          {Array.from({ length: cols }, (_, j) => (
            <Skeleton key={j} width={j === 0 ? "30%" : "15%"} />
          ))}
        </div>
      ))}
    </div>
  );
}

/** A horizontal usage bar; value and max in the same unit. */
export function Bar({ value, max, label, title }: { value: number; max: number; label: string; title?: string }) {
  const pct = max > 0 ? Math.max(0, Math.min(100, (value / max) * 100)) : 0;
  const tone = pct > 90 ? styles.barHot : pct > 70 ? styles.barWarm : "";
  return (
    <div className={styles.barWrap} title={title ?? label}>
      <div className={styles.bar} role="meter" aria-valuenow={Math.round(pct)} aria-valuemin={0} aria-valuemax={100} aria-label={title ?? label}>
        <div className={`${styles.barFill} ${tone}`} style={{ width: pct + "%" }} />
      </div>
      <span className={styles.barLabel}>{label}</span>
    </div>
  );
}

export function Card({ title, actions, children, className }: { title?: ReactNode; actions?: ReactNode; children: ReactNode; className?: string }) {
  return (
    <section className={`${styles.card} ${className ?? ""}`}>
      {(title || actions) && (
        <header className={styles.cardHead}>
          {title && <h2>{title}</h2>}
          {actions && <div className={styles.cardActions}>{actions}</div>}
        </header>
      )}
      {children}
    </section>
  );
}

export function Dialog({
  open,
  title,
  children,
  onClose,
  actions,
}: {
  open: boolean;
  title: string;
  children: ReactNode;
  onClose: () => void;
  actions: ReactNode;
}) {
  const ref = useRef<HTMLDivElement>(null);
  const close = useRef(onClose);
  close.current = onClose;
  // Only on opening: re-running on every render would steal the focus while typing.
  useEffect(() => {
    if (!open) return;
    const prev = document.activeElement as HTMLElement | null;
    const first = ref.current?.querySelector<HTMLElement>("input, select, textarea") ?? ref.current?.querySelector<HTMLElement>("button");
    first?.focus();
    const key = (e: KeyboardEvent) => {
      if (e.key === "Escape") close.current();
      if (e.key === "Tab" && ref.current) {
        // keep the focus inside the dialog
        const items = [...ref.current.querySelectorAll<HTMLElement>("button:not(:disabled), input:not(:disabled), select:not(:disabled), textarea:not(:disabled)")];
        const a = items[0];
        const z = items[items.length - 1];
        if (!a || !z) return;
        if (e.shiftKey && document.activeElement === a) {
          e.preventDefault();
          z.focus();
        } else if (!e.shiftKey && document.activeElement === z) {
          e.preventDefault();
          a.focus();
        }
      }
    };
    window.addEventListener("keydown", key);
    return () => {
      window.removeEventListener("keydown", key);
      prev?.focus?.();
    };
  }, [open]);
  if (!open) return null;
  return (
    <div className={styles.backdrop} onMouseDown={(e) => e.target === e.currentTarget && onClose()}>
      <div className={styles.dialog} role="dialog" aria-modal="true" aria-label={title} ref={ref}>
        <h2>{title}</h2>
        <div className={styles.dialogBody}>{children}</div>
        <div className={styles.dialogActions}>{actions}</div>
      </div>
    </div>
  );
}

export function Field({ label, error, children, hint }: { label: string; error?: string; hint?: ReactNode; children: ReactNode }) {
  return (
    <label className={styles.field}>
      <span className={styles.fieldLabel}>{label}</span>
      {children}
      {hint && <span className={styles.hint}>{hint}</span>}
      {error && <span className="field-error" role="alert">{error}</span>}
    </label>
  );
}

export function formatBytes(n: number | undefined): string {
  if (n === undefined || !Number.isFinite(n)) return "–";
  const u = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < u.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v >= 100 || i === 0 ? Math.round(v) : v.toFixed(1)} ${u[i]}`;
}

export function formatDuration(ms: number | undefined): string {
  if (!ms || ms < 0) return "–";
  const s = Math.floor(ms / 1000);
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (d) return `${d}d ${h}h`;
  if (h) return `${h}h ${m}m`;
  if (m) return `${m}m ${s % 60}s`;
  return `${s}s`;
}

export function formatDate(s: string | null | undefined): string {
  if (!s) return "–";
  const d = new Date(s);
  return Number.isNaN(d.getTime()) ? s : d.toLocaleString();
}
