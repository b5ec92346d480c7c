#!/usr/bin/env python3
"""Checks the Kubernetes manifests of deploy/k8s/ as rendered by kustomize.

usage:
  check_k8s.py --overlay NAME [--no-placeholders] RENDERED.yaml
      RENDERED.yaml is `kubectl kustomize deploy/k8s/overlays/NAME`.
  check_k8s.py --raw SOURCE_DIR
      old kustomize (no components, no `labels`): checks the raw files of
      deploy/k8s/base and deploy/k8s/components instead, with the Secrets and
      ConfigMaps the kustomization files generate standing in for the
      rendered ones.
  check_k8s.py --scrape SOURCE_DIR
      deploy/k8s/prometheus-scrape.yml has the jobs and component labels of
      deploy/observability/prometheus.yml.

What a render must satisfy (each failure names the object):
  * workloads (Deployment, StatefulSet, DaemonSet): the selector matches the
    pod template's labels;
  * every container (init containers too) has cpu and memory requests and
    limits; every container has a readiness or liveness probe, warden-api
    and warden-ws both (api: readiness /readyz, liveness /healthz), and
    named probe ports exist;
  * `sh -c` scripts of containers parse (sh -n);
  * every HPA targets an existing workload; every PDB, Service and
    NetworkPolicy (its podSelector and same-namespace `from` podSelectors)
    selects the pods of at least one workload;
  * every Service targetPort is a port of a container it selects; every
    Ingress backend is an existing Service and port;
  * every Secret and ConfigMap referenced by env, envFrom and volumes
    exists in the render (or is a cert-manager Certificate's secretName),
    and so do the keys taken from it;
  * images carry an explicit tag (or digest) other than `latest`;
  * warden-api and warden-ws run as non-root with a read-only root file
    system, all capabilities dropped and seccomp RuntimeDefault;
  * NATS: a StatefulSet of 3 replicas with a volumeClaimTemplate and a
    headless Service; its configuration enables JetStream on that volume and
    routes to all 3 pods through the headless Service; /healthz probes;
    warden-api's WARDEN_JS_REPLICAS is not more than the NATS servers;
  * warden-agent is a DaemonSet on nodes labelled warden.io/game-node=true;
  * a default-deny ingress NetworkPolicy; the Ingress sends /api and / to
    warden-api, /ws to warden-ws, and has a TLS secret;
  * pods annotated for Prometheus expose the annotated port;
  * overlay production: no PostgreSQL StatefulSet; overlay small: one;
  * --no-placeholders: no Secret still holds a PLACEHOLDER value.
"""
import base64
import os
import re
import subprocess
import sys

try:
    import yaml
except ImportError:  # pragma: no cover
    print("check_k8s: python3-yaml is missing (apt-get install python3-yaml)", file=sys.stderr)
    sys.exit(1)

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet")
errors = []
where = ""


def err(obj, msg):
    name = f"{obj.get('kind', '?')}/{obj.get('metadata', {}).get('name', '?')}" if isinstance(obj, dict) else str(obj)
    line = f"check_k8s: [{where}] {name}: {msg}"
    errors.append(line)
    print(line, file=sys.stderr)


def name_of(o):
    return o.get("metadata", {}).get("name", "")


def labels_match(selector, labels):
    """A label selector (matchLabels/matchExpressions) against a label map."""
    if selector is None:
        return False
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for e in selector.get("matchExpressions") or []:
        k, op, vals = e.get("key"), e.get("operator"), e.get("values") or []
        if op == "In" and labels.get(k) not in vals:
            return False
        if op == "NotIn" and labels.get(k) in vals:
            return False
        if op == "Exists" and k not in labels:
            return False
        if op == "DoesNotExist" and k in labels:
            return False
    return True


def pod_spec(w):
    return w.get("spec", {}).get("template", {}).get("spec", {}) or {}


def pod_labels(w):
    return w.get("spec", {}).get("template", {}).get("metadata", {}).get("labels", {}) or {}


def containers(w, init=True):
    ps = pod_spec(w)
    out = list(ps.get("containers") or [])
    if init:
        out += list(ps.get("initContainers") or [])
    return out


class Render:
    def __init__(self, docs):
        self.docs = [d for d in docs if isinstance(d, dict) and d.get("kind")]
        # A cert-manager Certificate provides its Secret at run time.
        self.provided = []
        for d in self.docs:
            if d["kind"] == "Certificate" and d.get("apiVersion", "").startswith("cert-manager.io/"):
                self.provided.append({"kind": "Secret", "metadata": {"name": d.get("spec", {}).get("secretName")},
                                      "data": {"tls.crt": "", "tls.key": "", "ca.crt": ""}})
        self.workloads = [d for d in self.docs if d["kind"] in WORKLOAD_KINDS]

    def of(self, kind):
        return [d for d in self.docs if d["kind"] == kind]

    def get(self, kind, name):
        for d in self.docs + self.provided:
            if d["kind"] == kind and name_of(d) == name:
                return d
        return None

    def selected(self, selector):
        return [w for w in self.workloads if labels_match(selector, pod_labels(w))]


def data_keys(obj):
    keys = set((obj.get("data") or {}).keys()) | set((obj.get("stringData") or {}).keys())
    keys |= set((obj.get("binaryData") or {}).keys())
    return keys


# ---------------------------------------------------------------- the checks
def check_workloads(r):
    for w in r.workloads:
        sel = w.get("spec", {}).get("selector")
        if not sel or not (sel.get("matchLabels") or sel.get("matchExpressions")):
            err(w, "has no selector")
        elif not labels_match(sel, pod_labels(w)):
            err(w, f"selector {sel.get('matchLabels')} does not match its pod template labels {pod_labels(w)}")
        for c in containers(w):
            res = c.get("resources") or {}
            for part in ("requests", "limits"):
                got = res.get(part) or {}
                missing = [k for k in ("cpu", "memory") if k not in got]
                if missing:
                    err(w, f"container {c.get('name')} has no {part} for {', '.join(missing)}")
        for c in containers(w):
            cmd = (c.get("command") or []) + (c.get("args") or [])
            if len(cmd) >= 3 and cmd[0] in ("/bin/sh", "sh", "/bin/bash", "bash") and cmd[1] == "-c":
                chk = subprocess.run([cmd[0].rsplit("/", 1)[-1], "-n", "-c", cmd[2]], capture_output=True, text=True)
                if chk.returncode != 0:
                    err(w, f"container {c.get('name')}: its shell script does not parse: {chk.stderr.strip()}")
        names = {c.get("name") for c in containers(w, init=False)}
        for c in containers(w, init=False):
            has_ready, has_live = "readinessProbe" in c, "livenessProbe" in c
            if not (has_ready or has_live):
                err(w, f"container {c.get('name')} has neither a readiness nor a liveness probe")
            ports = {p.get("name") for p in c.get("ports") or [] if p.get("name")}
            for pk in ("readinessProbe", "livenessProbe", "startupProbe"):
                p = c.get(pk) or {}
                for h in ("httpGet", "tcpSocket"):
                    port = (p.get(h) or {}).get("port")
                    if isinstance(port, str) and port not in ports:
                        err(w, f"container {c.get('name')} {pk} uses port {port!r}, which it does not declare")
        if name_of(w) in ("warden-api", "warden-ws"):
            main = [c for c in containers(w, init=False) if c.get("name") in ("api", "ws")] or containers(w, init=False)[:1]
            for c in main:
                if "readinessProbe" not in c or "livenessProbe" not in c:
                    err(w, f"container {c.get('name')} needs both a readiness and a liveness probe")
                want = {"readinessProbe": "/readyz" if name_of(w) == "warden-api" else "/healthz",
                        "livenessProbe": "/healthz"}
                for pk, path in want.items():
                    got = ((c.get(pk) or {}).get("httpGet") or {}).get("path")
                    if got is not None and got != path:
                        err(w, f"container {c.get('name')} {pk} GETs {got}, expected {path}")
            check_hardened(w)
        del names


def check_hardened(w):
    ps = pod_spec(w)
    psc = ps.get("securityContext") or {}
    for c in containers(w):
        csc = c.get("securityContext") or {}
        nonroot = csc.get("runAsNonRoot", psc.get("runAsNonRoot"))
        if nonroot is not True:
            err(w, f"container {c.get('name')}: runAsNonRoot is not true")
        uid = csc.get("runAsUser", psc.get("runAsUser"))
        if uid == 0:
            err(w, f"container {c.get('name')}: runAsUser 0")
        if csc.get("readOnlyRootFilesystem") is not True:
            err(w, f"container {c.get('name')}: readOnlyRootFilesystem is not true")
        if csc.get("allowPrivilegeEscalation") is not False:
            err(w, f"container {c.get('name')}: allowPrivilegeEscalation is not false")
        if csc.get("privileged"):
            err(w, f"container {c.get('name')}: privileged")
        drop = [x.upper() for x in (csc.get("capabilities") or {}).get("drop") or []]
        if "ALL" not in drop:
            err(w, f"container {c.get('name')}: capabilities do not drop ALL")
        seccomp = (csc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type")
        if seccomp != "RuntimeDefault":
            err(w, f"container {c.get('name')}: seccompProfile is {seccomp!r}, not RuntimeDefault")


def check_selectors(r):
    for h in r.of("HorizontalPodAutoscaler"):
        ref = h.get("spec", {}).get("scaleTargetRef") or {}
        t = r.get(ref.get("kind"), ref.get("name"))
        if t is None or t["kind"] not in WORKLOAD_KINDS:
            err(h, f"scaleTargetRef {ref.get('kind')}/{ref.get('name')} is not a workload in the render")
        elif t["kind"] == "DaemonSet":
            err(h, "targets a DaemonSet")
        if h.get("apiVersion") != "autoscaling/v2":
            err(h, f"apiVersion {h.get('apiVersion')}, expected autoscaling/v2")
        spec = h.get("spec", {})
        if spec.get("minReplicas", 1) > spec.get("maxReplicas", 0):
            err(h, "minReplicas > maxReplicas")
    for p in r.of("PodDisruptionBudget"):
        if not r.selected(p.get("spec", {}).get("selector")):
            err(p, f"selector {p.get('spec', {}).get('selector')} selects no workload's pods")
    for s in r.of("Service"):
        sel = s.get("spec", {}).get("selector")
        if not sel:
            err(s, "has no selector")
            continue
        ws = r.selected({"matchLabels": sel})
        if not ws:
            err(s, f"selector {sel} selects no workload's pods")
            continue
        for port in s.get("spec", {}).get("ports") or []:
            tp = port.get("targetPort", port.get("port"))
            ok = False
            for w in ws:
                for c in containers(w, init=False):
                    for cp in c.get("ports") or []:
                        if (isinstance(tp, str) and cp.get("name") == tp) or \
                           (isinstance(tp, int) and cp.get("containerPort") == tp):
                            ok = True
            if not ok:
                err(s, f"targetPort {tp!r} (port {port.get('name') or port.get('port')}) is no container port of "
                       f"{', '.join(name_of(w) for w in ws)}")
    for n in r.of("NetworkPolicy"):
        spec = n.get("spec", {})
        ps = spec.get("podSelector")
        if ps is None:
            err(n, "has no podSelector")
        elif not r.selected(ps):
            err(n, f"podSelector {ps} selects no workload's pods")
        for rule in spec.get("ingress") or []:
            for peer in rule.get("from") or []:
                if "podSelector" in peer and "namespaceSelector" not in peer and not r.selected(peer["podSelector"]):
                    err(n, f"allows traffic from podSelector {peer['podSelector']}, which selects no workload's pods")
    if not any(not (n["spec"].get("podSelector") or {}) and "Ingress" in (n["spec"].get("policyTypes") or [])
               and not n["spec"].get("ingress") for n in r.of("NetworkPolicy")):
        err("NetworkPolicy/*", "no default-deny ingress policy (podSelector {}, policyTypes [Ingress], no rules)")


def check_references(r, generated_only_names=False):
    def need(w, kind, name, key=None, optional=False, what=""):
        obj = r.get(kind, name)
        if obj is None:
            if not optional:
                err(w, f"{what} references {kind} {name!r}, which is not in the render")
            return
        if key is not None and not generated_only_names and key not in data_keys(obj):
            err(w, f"{what} references key {key!r} of {kind} {name!r}, which has no such key")

    for w in r.workloads:
        ps = pod_spec(w)
        for c in containers(w):
            what = f"container {c.get('name')}"
            for e in c.get("env") or []:
                vf = e.get("valueFrom") or {}
                for ref, kind in (("secretKeyRef", "Secret"), ("configMapKeyRef", "ConfigMap")):
                    if ref in vf:
                        x = vf[ref]
                        need(w, kind, x.get("name"), x.get("key"), x.get("optional", False), f"{what} env {e.get('name')}")
            for ef in c.get("envFrom") or []:
                for ref, kind in (("secretRef", "Secret"), ("configMapRef", "ConfigMap")):
                    if ref in ef:
                        need(w, kind, ef[ref].get("name"), None, ef[ref].get("optional", False), f"{what} envFrom")
            vols = {v.get("name") for v in ps.get("volumes") or []}
            vols |= {t.get("metadata", {}).get("name") for t in w.get("spec", {}).get("volumeClaimTemplates") or []}
            for m in c.get("volumeMounts") or []:
                if m.get("name") not in vols:
                    err(w, f"{what} mounts volume {m.get('name')!r}, which the pod does not define")
        for v in ps.get("volumes") or []:
            srcs = []
            if "secret" in v:
                srcs.append(("Secret", v["secret"].get("secretName"), v["secret"]))
            if "configMap" in v:
                srcs.append(("ConfigMap", v["configMap"].get("name"), v["configMap"]))
            for p in (v.get("projected") or {}).get("sources") or []:
                if "secret" in p:
                    srcs.append(("Secret", p["secret"].get("name"), p["secret"]))
                if "configMap" in p:
                    srcs.append(("ConfigMap", p["configMap"].get("name"), p["configMap"]))
            for kind, name, spec in srcs:
                need(w, kind, name, None, spec.get("optional", False), f"volume {v.get('name')}")
                for it in spec.get("items") or []:
                    need(w, kind, name, it.get("key"), spec.get("optional", False), f"volume {v.get('name')} item")


def image_ok(img):
    if "@sha256:" in img:
        return True
    last = img.rsplit("/", 1)[-1]
    if ":" not in last:
        return False
    return last.rsplit(":", 1)[1] not in ("", "latest")


def check_images(r):
    for w in r.workloads:
        for c in containers(w):
            img = c.get("image") or ""
            if not image_ok(img):
                err(w, f"container {c.get('name')} image {img!r} has no tag or uses :latest")


def check_nats(r):
    ss = r.get("StatefulSet", "nats")
    if ss is None:
        err("StatefulSet/nats", "missing")
        return
    spec = ss.get("spec", {})
    if spec.get("replicas") != 3:
        err(ss, f"replicas is {spec.get('replicas')}, expected 3")
    vcts = spec.get("volumeClaimTemplates") or []
    if not vcts:
        err(ss, "no volumeClaimTemplates (JetStream needs a persistent file store)")
    headless = r.get("Service", spec.get("serviceName"))
    if headless is None or headless.get("spec", {}).get("clusterIP") != "None":
        err(ss, f"serviceName {spec.get('serviceName')!r} is not a headless Service in the render")
    svc = spec.get("serviceName", "")
    cm_names = [v["configMap"]["name"] for v in pod_spec(ss).get("volumes") or [] if "configMap" in v]
    conf = None
    for n in cm_names:
        cm = r.get("ConfigMap", n)
        if cm and "nats.conf" in (cm.get("data") or {}):
            conf = cm["data"]["nats.conf"]
    if conf is None:
        err(ss, "no mounted ConfigMap holds nats.conf")
        return
    body = "\n".join(line.split("#", 1)[0] for line in conf.splitlines())
    js = re.search(r"\bjetstream\s*[:=]?\s*\{([^}]*)\}", body)
    if not js:
        err(ss, "nats.conf does not enable JetStream (no jetstream { } block)")
    else:
        m = re.search(r"store_dir\s*[:=]\s*\"?([^\"\s]+)", js.group(1))
        mounts = [mt.get("mountPath") for c in containers(ss, init=False)
                  for mt in c.get("volumeMounts") or [] if mt.get("name") in {v["metadata"]["name"] for v in vcts}]
        mfs = re.search(r"max_file_store\s*[:=]\s*\"?([0-9.]+)\s*([KMGT]?)i?B?\"?", js.group(1), re.I)
        claim = ((vcts[0].get("spec") or {}).get("resources") or {}).get("requests", {}).get("storage", "") if vcts else ""
        cm_ = re.fullmatch(r"([0-9.]+)([KMGT]?)i?", str(claim))
        if mfs and cm_:
            scale = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
            want = float(mfs.group(1)) * scale[mfs.group(2).upper()]
            have = float(cm_.group(1)) * scale[cm_.group(2).upper()]
            if want > have:
                err(ss, f"JetStream max_file_store {mfs.group(1)}{mfs.group(2)}B exceeds the volume claim {claim}")
        if not m:
            err(ss, "JetStream has no store_dir")
        elif not any(m.group(1) == mp or m.group(1).startswith(mp.rstrip("/") + "/") for mp in mounts):
            err(ss, f"JetStream store_dir {m.group(1)} is not on the claimed volume ({mounts})")
    cl = re.search(r"\bcluster\s*[:=]?\s*\{(.*?)\n\s*\}", body, re.S)
    if not cl:
        err(ss, "nats.conf has no cluster block")
    else:
        routes = re.findall(r"nats://([A-Za-z0-9.-]+):(\d+)", cl.group(1))
        for i in range(3):
            want = f"nats-{i}.{svc}"
            if not any(h == want or h.startswith(want + ".") for h, _ in routes):
                err(ss, f"cluster routes do not reach {want} (routes: {['%s:%s' % x for x in routes]})")
        if not re.search(r"listen\s*[:=]\s*\S*:6222", cl.group(1)):
            err(ss, "cluster does not listen on 6222")
    if "include" not in body or "auth.conf" not in body:
        err(ss, "nats.conf does not include auth.conf (operator mode)")
    if not re.search(r"\btls\s*[:=]?\s*\{", body):
        err(ss, "nats.conf has no tls block for clients")
    nats = [c for c in containers(ss, init=False) if c.get("name") == "nats"]
    for c in nats:
        paths = [((c.get(p) or {}).get("httpGet") or {}).get("path", "") for p in ("readinessProbe", "livenessProbe")]
        if not all(p.startswith("/healthz") for p in paths):
            err(ss, f"container nats probes are not /healthz: {paths}")
    api = r.get("Deployment", "warden-api")
    for c in containers(api, init=False) if api else []:
        for e in c.get("env") or []:
            if e.get("name") == "WARDEN_JS_REPLICAS" and str(e.get("value")) not in [str(i) for i in range(1, (spec.get("replicas") or 0) + 1)]:
                err(api, f"WARDEN_JS_REPLICAS={e.get('value')} but NATS has {spec.get('replicas')} servers")
    aff = pod_spec(ss).get("affinity", {}).get("podAntiAffinity")
    if not aff:
        err(ss, "no pod anti-affinity")
    if not any(labels_match(p.get("spec", {}).get("selector"), pod_labels(ss)) for p in r.of("PodDisruptionBudget")):
        err(ss, "no PodDisruptionBudget covers the NATS pods")


def check_agent(r):
    ds = r.get("DaemonSet", "warden-agent")
    if ds is None:
        err("DaemonSet/warden-agent", "missing")
        return
    ns = pod_spec(ds).get("nodeSelector") or {}
    if ns.get("warden.io/game-node") != "true":
        err(ds, f"nodeSelector {ns} does not select warden.io/game-node=true")
    if not pod_spec(ds).get("hostNetwork"):
        err(ds, "not on the host network (game ports)")
    if not any(v.get("hostPath") for v in pod_spec(ds).get("volumes") or []):
        err(ds, "no hostPath data directory")


def check_ingress(r):
    ings = r.of("Ingress")
    if not ings:
        err("Ingress/*", "missing")
    routes = {}
    for ing in ings:
        spec = ing.get("spec", {})
        if not any(t.get("secretName") for t in spec.get("tls") or []):
            err(ing, "no TLS section with a secretName")
        for rule in spec.get("rules") or []:
            for p in (rule.get("http") or {}).get("paths") or []:
                svc = (p.get("backend") or {}).get("service") or {}
                routes[p.get("path")] = svc.get("name")
                s = r.get("Service", svc.get("name"))
                if s is None:
                    err(ing, f"path {p.get('path')} goes to Service {svc.get('name')!r}, which is not in the render")
                    continue
                port = svc.get("port") or {}
                if not any(sp.get("name") == port.get("name") if "name" in port else sp.get("port") == port.get("number")
                           for sp in s.get("spec", {}).get("ports") or []):
                    err(ing, f"path {p.get('path')}: Service {svc.get('name')} has no port {port}")
    if ings:
        for path, svc in (("/api", "warden-api"), ("/ws", "warden-ws"), ("/", "warden-api")):
            if routes.get(path) != svc:
                err(ings[0], f"path {path} goes to {routes.get(path)!r}, expected {svc}")


def check_scrape_annotations(r):
    for w in r.workloads:
        ann = w.get("spec", {}).get("template", {}).get("metadata", {}).get("annotations") or {}
        if ann.get("prometheus.io/scrape") == "true":
            port = ann.get("prometheus.io/port")
            if not any(str(cp.get("containerPort")) == str(port) for c in containers(w, init=False)
                       for cp in c.get("ports") or []):
                err(w, f"annotated prometheus.io/port {port!r}, which no container exposes")
    for name in ("warden-api", "warden-ws"):
        w = r.get("Deployment", name)
        if w is not None:
            ann = w["spec"]["template"].get("metadata", {}).get("annotations") or {}
            if ann.get("prometheus.io/scrape") != "true":
                err(w, "pod template is not annotated prometheus.io/scrape=true")


def check_namespace(r):
    cluster_scoped = {"Namespace"}
    for d in r.docs:
        if d["kind"] in cluster_scoped:
            continue
        ns = d.get("metadata", {}).get("namespace")
        if ns != "warden":
            err(d, f"namespace is {ns!r}, expected warden")
    if r.get("Namespace", "warden") is None:
        err("Namespace/warden", "missing")


def check_overlay(r, overlay):
    pg = [w for w in r.workloads if w["kind"] == "StatefulSet" and
          (name_of(w) == "postgres" or any("postgres" in (c.get("image") or "").rsplit("/", 1)[-1]
                                          for c in containers(w)))]
    if overlay == "production":
        for w in pg:
            err(w, "the production overlay must not run PostgreSQL in the cluster")
        db = r.get("Secret", next((name_of(s) for s in r.of("Secret") if name_of(s).startswith("warden-db")), ""))
        if db is None:
            err("Secret/warden-db", "missing (the managed database's URI)")
    elif overlay in ("small", "site"):
        if not pg:
            err("StatefulSet/postgres", f"the {overlay} overlay runs PostgreSQL in the cluster, but there is none")
        for w in pg:
            if not w.get("spec", {}).get("volumeClaimTemplates"):
                err(w, "no volumeClaimTemplates")
            for c in containers(w, init=False):
                cmd = ((c.get("readinessProbe") or {}).get("exec") or {}).get("command") or []
                if "pg_isready" not in cmd:
                    err(w, f"container {c.get('name')} readiness is not pg_isready")
                if not any((e.get("valueFrom") or {}).get("secretKeyRef") for e in c.get("env") or []
                           if e.get("name") == "POSTGRES_PASSWORD"):
                    err(w, "POSTGRES_PASSWORD does not come from a Secret")


def check_no_placeholders(r):
    for s in r.of("Secret"):
        for k, v in (s.get("data") or {}).items():
            try:
                text = base64.b64decode(v).decode("utf-8", "replace")
            except Exception:  # noqa: BLE001
                text = ""
            if "PLACEHOLDER" in text:
                err(s, f"key {k} still holds a PLACEHOLDER value")


def run_render(path, overlay, no_placeholders):
    with open(path, encoding="utf-8") as f:
        docs = list(yaml.safe_load_all(f))
    r = Render(docs)
    if not r.docs:
        err("render", f"{path} holds no objects")
        return
    check_workloads(r)
    check_selectors(r)
    check_references(r)
    check_images(r)
    check_nats(r)
    check_agent(r)
    check_ingress(r)
    check_scrape_annotations(r)
    check_namespace(r)
    check_overlay(r, overlay)
    if no_placeholders:
        check_no_placeholders(r)
    print(f"check_k8s: [{overlay}] {len(r.docs)} objects, {len(r.workloads)} workloads checked")


# ------------------------------------------------------------ --raw (old kustomize)
def run_raw(src):
    k8s = os.path.join(src, "deploy", "k8s")
    docs = []
    images = {}
    for sub in ("base", os.path.join("components", "postgres")):
        d = os.path.join(k8s, sub)
        with open(os.path.join(d, "kustomization.yaml"), encoding="utf-8") as f:
            kz = yaml.safe_load(f)
        for res in kz.get("resources") or []:
            with open(os.path.join(d, res), encoding="utf-8") as f:
                docs += [x for x in yaml.safe_load_all(f) if x]
        for im in kz.get("images") or []:
            images[im["name"]] = f"{im.get('newName', im['name'])}:{im.get('newTag', '')}"
        for kind, key in (("Secret", "secretGenerator"), ("ConfigMap", "configMapGenerator")):
            for g in kz.get(key) or []:
                docs.append({"kind": kind, "metadata": {"name": g["name"]}})
    for d in docs:
        d.setdefault("metadata", {}).setdefault("namespace", "warden") if d.get("kind") != "Namespace" else None
        if d.get("kind") in WORKLOAD_KINDS:
            for c in containers(d):
                c["image"] = images.get(c.get("image"), c.get("image"))
    r = Render(docs)
    check_workloads(r)
    check_selectors(r)
    check_references(r, generated_only_names=True)
    check_images(r)
    check_nats(r)
    check_agent(r)
    check_ingress(r)
    check_scrape_annotations(r)
    check_namespace(r)
    print(f"check_k8s: [raw] {len(r.docs)} objects, {len(r.workloads)} workloads checked")


# ------------------------------------------------------------ --scrape
def run_scrape(src):
    def jobs(path):
        with open(path, encoding="utf-8") as f:
            d = yaml.safe_load(f)
        out = {}
        for j in d.get("scrape_configs") or []:
            comp = None
            for sc in j.get("static_configs") or []:
                comp = (sc.get("labels") or {}).get("component", comp)
            for rl in j.get("relabel_configs") or []:
                if rl.get("target_label") == "component":
                    comp = rl.get("replacement")
            out[j["job_name"]] = comp
        return out
    compose = jobs(os.path.join(src, "deploy", "observability", "prometheus.yml"))
    k8s = jobs(os.path.join(src, "deploy", "k8s", "prometheus-scrape.yml"))
    for name, comp in compose.items():
        if name == "prometheus":
            continue
        if name not in k8s:
            err(f"prometheus-scrape.yml", f"has no job {name!r} (deploy/observability/prometheus.yml has)")
        elif k8s[name] != comp:
            err(f"prometheus-scrape.yml", f"job {name}: component {k8s[name]!r}, the compose config says {comp!r}")
    print(f"check_k8s: [scrape] jobs {sorted(k8s)}")


# ------------------------------------------------------------ --nats-conf
def run_nats_conf(path, out):
    """Writes the NATS pod's files for a local `nats-server -t`: the init
    container's script and nats.conf, with the pod's paths moved under OUT."""
    with open(path, encoding="utf-8") as f:
        r = Render(list(yaml.safe_load_all(f)))
    ss = r.get("StatefulSet", "nats")
    if ss is None:
        err("StatefulSet/nats", "missing")
        return
    mounts = {}
    for c in containers(ss):
        for m in c.get("volumeMounts") or []:
            mounts[m["mountPath"]] = os.path.join(out, m["name"])
    # Longest paths first: /etc/nats-auth before /etc/nats.
    order = sorted(mounts, key=len, reverse=True)

    def move(text):
        for p in order:
            text = re.sub(re.escape(p) + r"(?=[/\"'\s]|$)", mounts[p], text)
        return text

    init = [c for c in pod_spec(ss).get("initContainers") or [] if c.get("name") == "config"]
    if not init:
        err(ss, "no init container 'config' (it writes nats.conf and auth.conf)")
        return
    cmd = init[0].get("command") or []
    if cmd[:2] != ["/bin/sh", "-c"] or len(cmd) != 3:
        err(ss, f"init container config: command is not /bin/sh -c SCRIPT: {cmd}")
        return
    for d in set(mounts.values()):
        os.makedirs(d, exist_ok=True)
    for v in pod_spec(ss).get("volumes") or []:
        if "configMap" in v:
            cm = r.get("ConfigMap", v["configMap"]["name"])
            for k, text in (cm.get("data") or {}).items():
                with open(os.path.join(out, v["name"], k), "w", encoding="utf-8") as f:
                    f.write(move(text))
    with open(os.path.join(out, "init.sh"), "w", encoding="utf-8") as f:
        f.write(move(cmd[2]) + "\n")
    main = [c for c in containers(ss, init=False) if c.get("name") == "nats"][0]
    with open(os.path.join(out, "args"), "w", encoding="utf-8") as f:
        f.write("\n".join(move(a) for a in main.get("args") or []) + "\n")
    with open(os.path.join(out, "mounts"), "w", encoding="utf-8") as f:
        for p in order:
            f.write(f"{p} {mounts[p]}\n")


def main(argv):
    global where
    if len(argv) >= 3 and argv[0] == "--nats-conf":
        where = "nats-conf"
        run_nats_conf(argv[1], argv[2])
    elif len(argv) >= 2 and argv[0] == "--raw":
        where = "raw"
        run_raw(argv[1])
    elif len(argv) >= 2 and argv[0] == "--scrape":
        where = "scrape"
        run_scrape(argv[1])
    elif len(argv) >= 3 and argv[0] == "--overlay":
        where = argv[1]
        rest = argv[2:]
        nop = "--no-placeholders" in rest
        rest = [a for a in rest if a != "--no-placeholders"]
        if len(rest) != 1:
            print(__doc__, file=sys.stderr)
            return 2
        run_render(rest[0], argv[1], nop)
    else:
        print(__doc__, file=sys.stderr)
        return 2
    if errors:
        print(f"check_k8s: [{where}] {len(errors)} problem(s)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
