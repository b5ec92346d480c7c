import { useEffect, useState, type ReactNode } from "react";
import { api } from "../api";
import { useAuth } from "../auth";
import { Link, usePath } from "../router";
import { applyTheme, currentTheme, type Theme } from "../theme";
import styles from "./Layout.module.css";

export function ThemeToggle() {
  const [theme, setTheme] = useState<Theme>(() => currentTheme());
  useEffect(() => {
    const on = () => setTheme(currentTheme());
    window.addEventListener("warden:theme", on);
    const mq = window.matchMedia?.("(prefers-color-scheme: dark)");
    mq?.addEventListener?.("change", on);
    return () => {
      window.removeEventListener("warden:theme", on);
      mq?.removeEventListener?.("change", on);
    };
  }, []);
  const next: Theme = theme === "dark" ? "light" : "dark";
  return (
    <button
      className={styles.iconButton}
      data-testid="theme-toggle"
      onClick={() => applyTheme(next)}
      aria-label={`Switch to ${next} theme`}
      title={`Switch to ${next} theme`}
    >
      {theme === "dark" ? "☀" : "☾"}
    </button>
  );
}

export function Layout({ children }: { children: ReactNode }) {
  const { user } = useAuth();
  const path = usePath();
  const [menu, setMenu] = useState(false);
  useEffect(() => setMenu(false), [path]);
  const link = (to: string, label: string, testid: string) => (
    <Link
      to={to}
      data-testid={testid}
      className={`${styles.navLink} ${path === to || (to !== "/" && path.startsWith(to + "/")) ? styles.active : ""}`}
      aria-current={path === to ? "page" : undefined}
    >
      {label}
    </Link>
  );
  return (
    <div className={styles.shell}>
      <header className={styles.top}>
        <Link to="/" className={styles.brand}>
          <span className={styles.logo} aria-hidden="true" />
          Warden
        </Link>
        <button className={`${styles.iconButton} ${styles.menuButton}`} aria-label="Menu" aria-expanded={menu} onClick={() => setMenu(!menu)}>
          ☰
        </button>
        <nav className={`${styles.nav} ${menu ? styles.open : ""}`} aria-label="Main">
          {link("/", "Servers", "nav-servers")}
          {user?.role === "admin" && (
            <>
              {link("/admin/nodes", "Nodes", "nav-nodes")}
              {link("/admin/templates", "Templates", "nav-templates")}
              {link("/admin/users", "Users", "nav-users")}
              {link("/admin/audit", "Audit", "nav-audit")}
            </>
          )}
          {link("/account", "Account", "nav-account")}
        </nav>
        <div className={styles.right}>
          <ThemeToggle />
          <span className={styles.user} title={user?.email}>
            {user?.username}
          </span>
          <button data-testid="logout" onClick={() => void api.logout()}>
            Sign out
          </button>
        </div>
      </header>
      <main className={styles.main}>{children}</main>
    </div>
  );
}
