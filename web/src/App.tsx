import { lazy, Suspense, useEffect, useRef } from "react";
import { AuthProvider, useAuth } from "./auth";
import { ToastProvider } from "./toast";
import { match, navigate, usePath } from "./router";
import { LoginPage } from "./pages/LoginPage";
import { ServersPage } from "./pages/ServersPage";
import { Layout } from "./components/Layout";
import { SkeletonRows } from "./components/ui";

// The server page pulls in xterm.js: load it on demand so sign-in and the list stay small.
const ServerPage = lazy(() => import("./pages/ServerPage"));
const AccountPage = lazy(() => import("./pages/AccountPage"));
const AdminPage = lazy(() => import("./pages/AdminPage"));

function Routes() {
  const { user, loading, reason } = useAuth();
  const path = usePath();
  const hadUser = useRef(false);

  useEffect(() => {
    if (loading) return;
    if (user) hadUser.current = true;
    if (!user && path !== "/login") {
      // Come back here after signing in: on a deep link or an expired session, not after "Sign out".
      const keep = path !== "/" && (!hadUser.current || reason !== undefined);
      const back = keep ? "?next=" + encodeURIComponent(path) : "";
      navigate("/login" + back, true);
    } else if (user && path === "/login") {
      const next = new URLSearchParams(window.location.search).get("next");
      navigate(next && next.startsWith("/") && !next.startsWith("//") ? next : "/", true);
    }
  }, [user, loading, path, reason]);

  // Fetch the server page's code (xterm) while the user looks at the list: no waterfall on click.
  useEffect(() => {
    if (!user) return;
    const t = window.setTimeout(() => void import("./pages/ServerPage"), 1500);
    return () => window.clearTimeout(t);
  }, [user]);

  if (loading) {
    return (
      <div style={{ padding: 24 }}>
        <SkeletonRows rows={3} />
      </div>
    );
  }
  if (!user) return <LoginPage notice={reason} />;

  let page;
  let m: Record<string, string> | null;
  if ((m = match("/servers/:id", path))) page = <ServerPage key={m.id} id={m.id as string} />;
  else if ((m = match("/servers/:id/:tab", path))) page = <ServerPage key={m.id} id={m.id as string} tab={m.tab} />;
  else if (path === "/account") page = <AccountPage />;
  else if ((m = match("/admin/:section", path))) page = <AdminPage section={m.section as string} />;
  else if (path === "/admin") page = <AdminPage section="nodes" />;
  else page = <ServersPage />;

  return (
    <Layout>
      <Suspense fallback={<SkeletonRows rows={5} />}>{page}</Suspense>
    </Layout>
  );
}

export function App() {
  return (
    <ToastProvider>
      <AuthProvider>
        <Routes />
      </AuthProvider>
    </ToastProvider>
  );
}
