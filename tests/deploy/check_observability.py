#!/usr/bin/env python3
"""Checks deploy/observability/:

* grafana-dashboard.json is valid JSON (json.tool's parser), a dashboard with
  panels, unique panel ids, every query panel has targets with expressions;
* every warden_* metric the dashboard queries is one the code exports
  (panel-api/api/metrics.c, panel-api/api/app.c, panel-ws/metrics.c), so a
  renamed metric cannot leave an empty panel behind;
* prometheus.yml parses as YAML (python3-yaml; skipped with a message when
  it is missing), has scrape_configs for warden-api and warden-ws, and every
  static target names a service of deploy/compose.yaml.

usage: check_observability.py SOURCE_DIR
"""
import json
import os
import re
import sys

src = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..")
obs = os.path.join(src, "deploy", "observability")
errors = []


def err(msg):
    errors.append(msg)
    print("check_observability: " + msg, file=sys.stderr)


# ---- the dashboard ---------------------------------------------------------
dash_path = os.path.join(obs, "grafana-dashboard.json")
with open(dash_path, encoding="utf-8") as f:
    try:
        dash = json.load(f)
    except json.JSONDecodeError as e:
        err(f"{dash_path}: not JSON: {e}")
        dash = None

exported = set()
for rel in ("panel-api/api/metrics.c", "panel-api/api/app.c", "panel-ws/metrics.c",
            "agent/metrics.c"):
    with open(os.path.join(src, rel), encoding="utf-8") as f:
        for m in re.finditer(r"# TYPE (warden_[a-z0-9_]+) (counter|gauge|histogram)", f.read()):
            name, kind = m.group(1), m.group(2)
            exported.add(name)
            if kind == "histogram":
                exported.update({name + "_bucket", name + "_sum", name + "_count"})
if not exported:
    err("found no exported metrics in the sources (did the # TYPE lines move?)")

if dash is not None:
    for key in ("title", "uid", "panels", "schemaVersion"):
        if key not in dash:
            err(f"dashboard has no {key!r}")
    panels = dash.get("panels", [])
    ids = [p.get("id") for p in panels]
    if len(ids) != len(set(ids)):
        err("dashboard panel ids are not unique")
    used = set()
    queries = 0
    for p in panels:
        if p.get("type") == "row":
            continue
        targets = p.get("targets") or []
        if not targets:
            err(f"panel {p.get('title')!r} has no queries")
        for t in targets:
            expr = t.get("expr", "")
            if not expr.strip():
                err(f"panel {p.get('title')!r} has an empty query")
            queries += 1
            used.update(re.findall(r"\bwarden_[a-z0-9_]+", expr))
        g = p.get("gridPos", {})
        if not all(k in g for k in ("x", "y", "w", "h")):
            err(f"panel {p.get('title')!r} has no full gridPos")
    for name in sorted(used - exported):
        err(f"dashboard queries {name}, which no component exports")
    for needed in ("warden_http_requests_total", "warden_http_request_duration_seconds_bucket",
                   "warden_db_pool_in_use", "warden_ws_connections", "warden_ws_subscriptions",
                   "warden_ws_messages_in_total", "warden_ws_messages_out_total",
                   "warden_ws_dropped_total", "warden_ws_send_queue_depth",
                   "warden_ws_requests_total"):
        if needed not in used:
            err(f"dashboard has no panel for {needed}")
    if not errors:
        print(f"check_observability: dashboard ok: {len(panels)} panels, {queries} queries, "
              f"{len(used)} warden metrics, all exported")

# ---- Prometheus ------------------------------------------------------------
prom_path = os.path.join(obs, "prometheus.yml")
try:
    import yaml
except ImportError:
    yaml = None
    print("check_observability: SKIPPED the prometheus.yml check: python3-yaml is not "
          "installed (apt-get install python3-yaml; docker-compose pulls it in)")
if yaml is not None:
    with open(prom_path, encoding="utf-8") as f:
        try:
            prom = yaml.safe_load(f)
        except yaml.YAMLError as e:
            err(f"{prom_path}: not YAML: {e}")
            prom = None
    with open(os.path.join(src, "deploy", "compose.yaml"), encoding="utf-8") as f:
        services = set((yaml.safe_load(f) or {}).get("services", {}))
    if prom is not None:
        jobs = {}
        for sc in prom.get("scrape_configs") or []:
            jobs[sc.get("job_name")] = sc
        for job in ("warden-api", "warden-ws"):
            if job not in jobs:
                err(f"prometheus.yml has no {job} job")
            elif jobs[job].get("metrics_path", "/metrics") != "/metrics":
                err(f"prometheus.yml: {job} does not scrape /metrics")
        for job, sc in jobs.items():
            for st in sc.get("static_configs") or []:
                for target in st.get("targets") or []:
                    host = target.rsplit(":", 1)[0]
                    if host != "localhost" and host not in services:
                        err(f"prometheus.yml: {job} target {target} is not a compose service")
        print(f"check_observability: prometheus.yml ok: jobs {', '.join(sorted(jobs))}")

if errors:
    sys.exit(1)
print("check_observability: ok")
