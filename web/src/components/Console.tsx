import { forwardRef, useEffect, useImperativeHandle, useRef, useState } from "react";
import { Terminal } from "@xterm/xterm";
import { FitAddon } from "@xterm/addon-fit";
import "@xterm/xterm/css/xterm.css";
import styles from "./Console.module.css";

export interface ConsoleHandle {
  write(lines: string[], kind?: "console" | "install" | "system"): void;
  clear(): void;
}

const PREFIX: Record<string, string> = {
  install: "\x1b[36m[install]\x1b[0m ",
  system: "\x1b[33m",
};

/** xterm.js console: ANSI colours, keeps history, follows new output unless the user scrolled up. */
export const Console = forwardRef<ConsoleHandle>(function Console(_props, ref) {
  const box = useRef<HTMLDivElement>(null);
  const term = useRef<Terminal | null>(null);
  const pending = useRef<string[]>([]);
  const [scrolledUp, setScrolledUp] = useState(false);

  useImperativeHandle(ref, () => ({
    write(lines, kind = "console") {
      const pre = PREFIX[kind] ?? "";
      const post = kind === "system" ? "\x1b[0m" : "";
      const text = lines.map((l) => pre + l + post + "\r\n").join("");
      if (term.current) term.current.write(text);
      else pending.current.push(text);
    },
    clear() {
      term.current?.clear();
    },
  }));

  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const t = new Terminal({
      convertEol: true,
      disableStdin: true,
      cursorBlink: false,
      cursorStyle: "underline",
      scrollback: 5000,
      fontSize: 13,
      fontFamily: 'ui-monospace, "JetBrains Mono", Menlo, Consolas, monospace',
      theme: { background: "#11151b", foreground: "#d8dee9", cursor: "#11151b" },
    });
    const fit = new FitAddon();
    t.loadAddon(fit);
    t.open(el);
    term.current = t;
    const safeFit = () => {
      try {
        fit.fit();
      } catch {
        /* not laid out yet */
      }
    };
    safeFit();
    for (const p of pending.current) t.write(p);
    pending.current = [];
    const onScroll = () => {
      const b = t.buffer.active;
      setScrolledUp(b.viewportY < b.baseY);
    };
    const d1 = t.onScroll(onScroll);
    const d2 = t.onWriteParsed(onScroll);
    const ro = typeof ResizeObserver !== "undefined" ? new ResizeObserver(safeFit) : null;
    ro?.observe(el);
    return () => {
      ro?.disconnect();
      d1.dispose();
      d2.dispose();
      t.dispose();
      term.current = null;
    };
  }, []);

  return (
    <div className={styles.wrap}>
      <div className={styles.term} data-testid="console" ref={box} />
      {scrolledUp && (
        <button className={styles.follow} data-testid="console-follow" onClick={() => term.current?.scrollToBottom()}>
          ↓ Follow new output
        </button>
      )}
    </div>
  );
});
