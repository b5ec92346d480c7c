// Theme: follows prefers-color-scheme until the user picks one; the pick is remembered.
export type Theme = "light" | "dark";
const KEY = "warden.theme";

export function systemTheme(): Theme {
  return typeof window !== "undefined" && window.matchMedia?.("(prefers-color-scheme: dark)").matches ? "dark" : "light";
}

export function storedTheme(): Theme | null {
  try {
    const v = localStorage.getItem(KEY);
    return v === "light" || v === "dark" ? v : null;
  } catch {
    return null;
  }
}

export function currentTheme(): Theme {
  return (document.documentElement.dataset.theme as Theme | undefined) ?? storedTheme() ?? systemTheme();
}

export function applyTheme(t: Theme | null) {
  if (t) {
    document.documentElement.dataset.theme = t;
    try {
      localStorage.setItem(KEY, t);
    } catch {
      /* ignore */
    }
  } else {
    delete document.documentElement.dataset.theme;
  }
  window.dispatchEvent(new Event("warden:theme"));
}
