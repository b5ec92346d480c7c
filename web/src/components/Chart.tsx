// A small dependency-free SVG line chart for the live stats.
import styles from "./Chart.module.css";

export interface Point {
  t: number; // ms
  v: number;
}

export function Chart({
  title,
  points,
  max,
  format,
  windowMs = 5 * 60_000,
  testid,
}: {
  title: string;
  points: Point[];
  max?: number;
  format: (v: number) => string;
  windowMs?: number;
  testid?: string;
}) {
  const W = 300;
  const H = 80;
  const now = points.length ? (points[points.length - 1] as Point).t : Date.now();
  const start = now - windowMs;
  const visible = points.filter((p) => p.t >= start);
  const top = Math.max(max ?? 0, ...visible.map((p) => p.v), 1e-9) * (max ? 1 : 1.15);
  const xy = visible.map((p) => [((p.t - start) / windowMs) * W, H - (Math.min(p.v, top) / top) * (H - 4) - 2] as const);
  const line = xy.map(([x, y], i) => `${i ? "L" : "M"}${x.toFixed(1)},${y.toFixed(1)}`).join(" ");
  const first = xy[0];
  const last = xy[xy.length - 1];
  const area = first && last ? `${line} L${last[0].toFixed(1)},${H} L${first[0].toFixed(1)},${H} Z` : "";
  const current = visible.length ? (visible[visible.length - 1] as Point).v : undefined;
  return (
    <figure className={styles.chart} data-testid={testid}>
      <figcaption className={styles.head}>
        <span>{title}</span>
        <strong>{current === undefined ? "–" : format(current)}</strong>
      </figcaption>
      <svg viewBox={`0 0 ${W} ${H}`} preserveAspectRatio="none" className={styles.svg} role="img" aria-label={`${title} over the last ${Math.round(windowMs / 60000)} minutes`}>
        <line x1="0" x2={W} y1={H / 2} y2={H / 2} className={styles.grid} />
        {area && <path d={area} className={styles.area} />}
        {line && <path d={line} className={styles.line} vectorEffect="non-scaling-stroke" />}
      </svg>
      <div className={styles.foot}>
        <span>{Math.round(windowMs / 60000)} min ago</span>
        <span>{visible.length ? `max ${format(top / (max ? 1 : 1.15))}` : "no data yet"}</span>
      </div>
    </figure>
  );
}
