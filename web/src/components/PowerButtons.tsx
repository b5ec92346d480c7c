import { useState } from "react";
import { powerButton, POWER_ACTIONS, type PowerAction, type PowerContext } from "../perms";
import { Dialog } from "./ui";
import styles from "./PowerButtons.module.css";

const LABEL: Record<PowerAction, string> = { start: "Start", stop: "Stop", restart: "Restart", kill: "Kill" };

export function PowerButtons({ ctx, onAction }: { ctx: PowerContext; onAction: (a: PowerAction) => void }) {
  const [confirmKill, setConfirmKill] = useState(false);
  return (
    <div className={styles.row} role="group" aria-label="Power">
      {POWER_ACTIONS.map((a) => {
        const b = powerButton(a, ctx);
        return (
          // The wrapper carries the tooltip: disabled buttons get no hover events in some browsers.
          <span key={a} title={b.reason ?? LABEL[a]} className={styles.tip}>
            <button
              data-testid={`power-${a}`}
              className={`${styles.btn} ${styles[a] ?? ""}`}
              disabled={!b.enabled}
              aria-disabled={!b.enabled}
              data-reason={b.reason}
              aria-label={b.reason ? `${LABEL[a]} (${b.reason})` : LABEL[a]}
              onClick={() => (a === "kill" ? setConfirmKill(true) : onAction(a))}
            >
              {LABEL[a]}
            </button>
          </span>
        );
      })}
      <Dialog
        open={confirmKill}
        title="Kill the server?"
        onClose={() => setConfirmKill(false)}
        actions={
          <>
            <button onClick={() => setConfirmKill(false)}>Cancel</button>
            <button
              className="danger"
              data-testid="confirm-kill"
              onClick={() => {
                setConfirmKill(false);
                onAction("kill");
              }}
            >
              Kill now
            </button>
          </>
        }
      >
        Killing stops the process at once, without saving. Unsaved game progress may be lost.
      </Dialog>
    </div>
  );
}
