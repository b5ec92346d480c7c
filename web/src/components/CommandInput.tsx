import { useRef, useState, type KeyboardEvent } from "react";
import { CommandHistory } from "./history";
import styles from "./Console.module.css";

export function CommandInput({
  onSend,
  disabled,
  reason,
}: {
  onSend: (cmd: string) => boolean | void;
  disabled?: boolean;
  reason?: string;
}) {
  const hist = useRef(new CommandHistory());
  const [value, setValue] = useState("");
  const key = (e: KeyboardEvent<HTMLInputElement>) => {
    if (e.key === "Enter") {
      e.preventDefault();
      const cmd = value.trim();
      if (!cmd) return;
      if (onSend(cmd) === false) return;
      hist.current.push(cmd);
      setValue("");
    } else if (e.key === "ArrowUp") {
      e.preventDefault();
      setValue(hist.current.up(value));
    } else if (e.key === "ArrowDown") {
      e.preventDefault();
      setValue(hist.current.down(value));
    }
  };
  return (
    <div className={styles.inputRow} title={disabled ? reason : undefined}>
      <span className={styles.prompt} aria-hidden="true">
        ›
      </span>
      <input
        data-testid="console-input"
        className={styles.input}
        aria-label="Console command"
        placeholder={disabled ? reason ?? "Console input unavailable" : "Type a command and press Enter (↑/↓ for history)"}
        value={value}
        disabled={disabled}
        maxLength={4096}
        autoComplete="off"
        spellCheck={false}
        onChange={(e) => setValue(e.target.value.replace(/[\r\n]/g, ""))}
        onKeyDown={key}
      />
    </div>
  );
}
