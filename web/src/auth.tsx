import { createContext, useContext, useEffect, useState, type ReactNode } from "react";
import { api, type User } from "./api";

interface AuthState {
  user: User | null;
  loading: boolean;
  reason?: string; // why the last session ended
}
const Ctx = createContext<AuthState>({ user: null, loading: true });

export function AuthProvider({ children }: { children: ReactNode }) {
  const [state, setState] = useState<AuthState>(() => ({ user: api.user, loading: api.user === null && api.isSignedIn }));
  useEffect(() => {
    const off = api.onAuthChange((e) => setState({ user: e.user, loading: false, reason: e.reason }));
    if (!api.user && api.isSignedIn) {
      api
        .resume()
        .then((u) => {
          if (!u) setState((s) => ({ ...s, user: null, loading: false }));
        })
        .catch(() => setState({ user: null, loading: false, reason: "Could not reach the panel to restore your session." }));
    } else {
      setState((s) => ({ ...s, loading: false }));
    }
    return off;
  }, []);
  return <Ctx.Provider value={state}>{children}</Ctx.Provider>;
}

export function useAuth(): AuthState {
  return useContext(Ctx);
}
