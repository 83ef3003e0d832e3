#!/usr/bin/env python3
"""Writes cosetd.json, the Grafana dashboard of cosetd (provisioning-ready: deploy/grafana/provisioning).

The dashboard is generated so that its layout, units and thresholds stay uniform; cosetd.json is
checked in (Grafana provisions files, not scripts) and tests/deploy/dashboard_test.py fails when it
differs from what this script writes. Ratios come from the recording rules of
deploy/prometheus/cosetd-rules.yml, which Prometheus must load. Run: python3 make_dashboard.py
"""

import json
import os

SEL = 'instance=~"$instance"'
DS = {"type": "prometheus", "uid": "${datasource}"}


class Layout:
    """Places panels left to right in rows of 24 grid units, and numbers them."""

    def __init__(self):
        self.panels, self.x, self.y, self.row_h, self.next_id = [], 0, 0, 0, 1

    def add(self, panel, w, h):
        if self.x + w > 24:
            self.x, self.y, self.row_h = 0, self.y + self.row_h, 0
        panel.update(id=self.next_id, gridPos={"x": self.x, "y": self.y, "w": w, "h": h})
        self.next_id += 1
        self.x += w
        self.row_h = max(self.row_h, h)
        self.panels.append(panel)

    def row(self, title):
        self.x, self.y, self.row_h = 0, self.y + self.row_h, 0
        self.add({"type": "row", "title": title, "collapsed": False, "panels": []}, 24, 1)
        self.x, self.y, self.row_h = 0, self.y + 1, 0


def targets(*exprs):
    """(expr, legend) pairs as Prometheus targets A, B, ..."""
    return [{"refId": chr(ord("A") + i), "datasource": DS, "expr": e, "legendFormat": legend}
            for i, (e, legend) in enumerate(exprs)]


def thresholds(*steps):
    """steps: (value, color) after the base green."""
    return {"mode": "absolute",
            "steps": [{"color": "green", "value": None}] + [{"color": c, "value": v} for v, c in steps]}


def panel(kind, title, description, exprs, unit, steps=(), **options):
    defaults = {"unit": unit, "thresholds": thresholds(*steps)}
    if kind == "timeseries":
        defaults["custom"] = {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 10, "showPoints": "never",
                              "thresholdsStyle": {"mode": "line" if steps else "off"}}
    if unit == "percentunit":
        defaults.update(min=0, max=1)
    return {"type": kind, "title": title, "description": description, "datasource": DS,
            "targets": targets(*exprs), "fieldConfig": {"defaults": defaults, "overrides": []},
            "options": options}


def stat(title, description, expr, unit, steps=()):
    return panel("stat", title, description, [(expr, "")], unit, steps, colorMode="value", graphMode="area",
                 reduceOptions={"calcs": ["lastNotNull"], "fields": "", "values": False})


def series(title, description, exprs, unit, steps=(), stack=False):
    p = panel("timeseries", title, description, exprs, unit, steps,
              legend={"displayMode": "table", "placement": "bottom", "calcs": ["lastNotNull", "max"]},
              tooltip={"mode": "multi", "sort": "desc"})
    if stack:
        p["fieldConfig"]["defaults"]["custom"]["stacking"] = {"mode": "normal", "group": "A"}
    return p


def build():
    L = Layout()
    L.row("Overview")
    L.add(stat("Bandwidth saved", "Float32 bytes per second that clients did not have to move: raw bytes "
               "encoded minus the compressed bytes, over 5 minutes.",
               f"sum(coset:bytes_saved:rate5m{{{SEL}}})", "Bps"), 4, 5)
    L.add(stat("Bytes saved", "Saved fraction of the raw bytes encoded, in the tensors' dtypes (0.86 for "
               "float32: codes are 14 % of it, a 7.3x compression; 0.73 for bfloat16/float16).",
               f"sum(coset:bytes_saved:rate5m{{{SEL}}}) / sum(coset:encoded_raw_bytes:rate5m{{{SEL}}})",
               "percentunit"), 4, 5)
    L.add(stat("Requests", "RPCs per second, all methods and codes.",
               f"sum(coset:requests:rate5m{{{SEL}}})", "reqps"), 4, 5)
    L.add(stat("Error ratio", "Failed requests (not counting CANCELLED and load shedding) over all requests; "
               "alert at 5 %.", f"max(coset:request_errors:ratio_rate5m{{{SEL}}})", "percentunit",
               [(0.01, "yellow"), (0.05, "red")]), 4, 5)
    L.add(stat("In flight", "Requests being served now (--max-concurrent bounds it).",
               f"sum(coset_inflight_requests{{{SEL}}})", "short"), 4, 5)
    L.add(panel("gauge", "Memory budget used", "Resident tensors, LUTs and codebooks plus what requests in "
                "flight reserved, over --memory-budget; requests are refused beyond it (alert at 90 %).",
                [(f"max(coset:memory_budget:used_ratio{{{SEL}}})", "")], "percentunit",
                [(0.75, "yellow"), (0.9, "red")],
                reduceOptions={"calcs": ["lastNotNull"], "fields": "", "values": False}), 4, 5)

    L.row("Compression")
    L.add(series("Raw and saved bytes", "Raw bytes encoded per second (in the tensors' dtypes), and bytes saved.",
                 [(f"sum(coset:encoded_raw_bytes:rate5m{{{SEL}}})", "raw in"),
                  (f"sum(coset:bytes_saved:rate5m{{{SEL}}})", "saved")], "Bps"), 8, 8)
    L.add(series("Compression ratio by configuration", "Raw bytes over compressed bytes (7.3 for float32 "
                 "tensors with D4 q=4 M=2, its scales and T counters included; 3.7 for 16-bit ones).",
                 [(f"max by (config) (coset:compression:ratio_rate5m{{{SEL}}})", "{{config}}")], "x"), 8, 8)
    L.add(series("First-try overload rate by configuration", "Chunks needing T > 0 (a scaled-down retry) over "
                 "all chunks; about 25 % is normal for N(0,1) data at the default beta, over 50 % means beta "
                 "or the scale block does not fit the data (alert).",
                 [(f"max by (config) (coset:overload_chunks:ratio_rate5m{{{SEL}}})", "{{config}}")],
                 "percentunit", [(0.5, "red")]), 8, 8)
    L.add(panel("bargauge", "Overload counter T distribution", "Chunks by their overload counter T over "
                "the dashboard's time range (T = 0: no overload; 8+ pooled).",
                [(f"sum by (t) (increase(coset_overload_t_total{{{SEL}}}[$__range]))", "T={{t}}")], "short",
                displayMode="gradient", orientation="horizontal",
                reduceOptions={"calcs": ["lastNotNull"], "fields": "", "values": False}), 12, 8)
    L.add(series("Clipped chunks by configuration", "Chunks that reached t_max and were zeroed or refused: "
                 "the codec is clipping (alert above 0.1 %).",
                 [(f"max by (config) (coset:capped_chunks:ratio_rate5m{{{SEL}}})", "{{config}}")],
                 "percentunit", [(0.001, "red")]), 12, 8)

    L.row("Requests")
    L.add(series("Requests by method and code", "RPCs per second.",
                 [(f"sum by (method, code) (coset:requests:rate5m{{{SEL}}})", "{{method}} {{code}}")], "reqps",
                 stack=True), 12, 8)
    L.add(series("Errors by method and code", "Requests per second that ended with an error code; the "
                 "message of each names the field or limit.",
                 [(f'sum by (method, code) (coset:requests:rate5m{{{SEL}, code!="OK"}})', "{{method}} {{code}}")],
                 "reqps"), 12, 8)
    L.add(series("Latency p50 and p99 by method", "From the request-duration histogram, over 5 minutes; "
                 "alert when p99 stays above 1 s.",
                 [(f"max by (method) (coset:request_duration_seconds:p50_5m{{{SEL}}})", "p50 {{method}}"),
                  (f"max by (method) (coset:request_duration_seconds:p99_5m{{{SEL}}})", "p99 {{method}}")], "s",
                 [(1, "red")]), 12, 8)
    L.add(series("Payload bytes by method", "Request and response payload bytes per second (shared-memory "
                 "payloads are not counted: only their references travel).",
                 [(f"sum by (method) (rate(coset_request_bytes_total{{{SEL}}}[$__rate_interval]))", "in {{method}}"),
                  (f"sum by (method) (rate(coset_response_bytes_total{{{SEL}}}[$__rate_interval]))",
                   "out {{method}}")], "Bps"), 12, 8)

    L.row("Resources")
    L.add(series("Memory budget", "Bytes charged to --memory-budget, and the budget.",
                 [(f"sum(coset_memory_used_bytes{{{SEL}}})", "used"),
                  (f"sum(coset_memory_budget_bytes{{{SEL}}})", "budget")], "bytes"), 8, 8)
    L.add(series("Resident state", "Bytes of resident compressed tensors, of their repacked LUT matrices and "
                 "of codebooks / two-sided LUTs.",
                 [(f"sum(coset_resident_tensor_bytes{{{SEL}}})", "resident tensors"),
                  (f"sum(coset_lut_cache_bytes{{{SEL}}})", "LUT matrices"),
                  (f"sum(coset_codebook_bytes{{{SEL}}})", "codebooks and LUTs")], "bytes", stack=True), 8, 8)
    L.add(series("Resident tensors and configurations", "Resident tensors and registered configurations.",
                 [(f"sum(coset_resident_tensors{{{SEL}}})", "tensors"),
                  (f"sum(coset_registered_configs{{{SEL}}})", "configurations")], "short"), 8, 8)
    L.add(series("Shared-memory regions", "Regions clients registered on the side socket.",
                 [(f"sum(coset_shm_regions{{{SEL}}})", "regions")], "short"), 12, 8)
    L.add(series("Shared-memory bytes", "Bytes of the registered regions the daemon maps (--shm-budget), and "
                 "of those, the bytes page-locked for the CUDA backend's pipelined staging (--cuda-staging).",
                 [(f"sum(coset_shm_bytes{{{SEL}}})", "mapped"),
                  (f"sum(coset_shm_page_locked_bytes{{{SEL}}})", "page-locked")], "bytes"), 12, 8)

    L.row("Training hook (torch extension through cosetd)")
    hook = f'{SEL}, method="Encode", client="torch"'
    L.add(series("Offloaded encodes", "Encode requests per second from the torch extension (client kind "
                 "\"torch\"): the DDP hook with offload to cosetd sends one per bucket shard.",
                 [(f"sum by (code) (coset:requests:rate5m{{{hook}}})", "{{code}}")], "reqps"), 6, 8)
    L.add(series("Offloaded encode latency", "p50 / p99 of the torch extension's Encode requests: the part of "
                 "each training step the daemon takes.",
                 [(f"histogram_quantile(0.5, sum by (le) (rate(coset_request_duration_seconds_bucket{{{hook}}}"
                   "[$__rate_interval])))", "p50"),
                  (f"histogram_quantile(0.99, sum by (le) (rate(coset_request_duration_seconds_bucket{{{hook}}}"
                   "[$__rate_interval])))", "p99")], "s"), 6, 8)
    L.add(series("Requests by client kind", "All requests per second by the kind of client that sent them "
                 "(cxx, cosetctl, python, torch; other for unknown).",
                 [(f"sum by (client) (coset:requests:rate5m{{{SEL}}})", "{{client}}")], "reqps", stack=True), 6, 8)
    L.add(series("Bytes saved by configuration", "Bytes per second the codes saved, by configuration label "
                 "(the hook's shows as its codec name).",
                 [(f"sum by (config) (coset:bytes_saved:rate5m{{{SEL}}})", "{{config}}")], "Bps"), 6, 8)

    L.row("Backends (CPU, CUDA)")
    L.add(series("Requests by backend", "RPCs per second by the backend their codec work ran on: cuda for "
                 "Encode, Decode and Quantize on a daemon started with --backend cuda (or auto with a device), "
                 "else cpu.",
                 [(f"sum by (backend, method) (rate(coset_requests_total{{{SEL}}}[$__rate_interval]))",
                   "{{backend}} {{method}}")], "reqps", stack=True), 8, 8)
    L.add(series("Latency p99 by backend", "From the request-duration histogram, over 5 minutes: a CUDA request "
                 "includes staging its payload through device memory.",
                 [(f"histogram_quantile(0.99, sum by (le, backend, method) "
                   f"(rate(coset_request_duration_seconds_bucket{{{SEL}}}[5m])))", "p99 {{backend}} {{method}}")],
                 "s"), 8, 8)
    L.add(series("Device memory", "Device memory the CUDA backend holds (codebook tables, resident "
                 "weights' device copies and requests' staging), of which the resident weights (kept "
                 "within half the budget), and --device-memory-budget: a request that would pass it is "
                 "refused with RESOURCE_EXHAUSTED. 0 held on the CPU backend.",
                 [(f"sum(coset_device_memory_used_bytes{{{SEL}}})", "used"),
                  (f"sum(coset_resident_device_bytes{{{SEL}}})", "resident weights"),
                  (f"sum(coset_device_memory_budget_bytes{{{SEL}}})", "budget")], "bytes"), 8, 8)

    return {
        "title": "cosetd", "uid": "cosetd", "tags": ["coset"], "editable": True, "schemaVersion": 39,
        "version": 1, "refresh": "30s", "time": {"from": "now-6h", "to": "now"}, "timezone": "",
        "graphTooltip": 1, "links": [], "annotations": {"list": []},
        "description": "cosetd: bandwidth saved, codec health, requests, latency and resources.",
        "templating": {"list": [
            {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus",
             "current": {}, "hide": 0, "refresh": 1},
            {"name": "instance", "label": "Instance", "type": "query", "datasource": DS,
             "query": {"query": "label_values(coset_requests_total, instance)", "refId": "instance"},
             "definition": "label_values(coset_requests_total, instance)", "refresh": 2, "includeAll": True,
             "multi": True, "allValue": ".*", "current": {"text": "All", "value": "$__all"}, "hide": 0,
             "sort": 1},
        ]},
        "panels": L.panels,
    }


def render():
    return json.dumps(build(), indent=2, sort_keys=False) + "\n"


if __name__ == "__main__":
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cosetd.json")
    with open(path, "w") as f:
        f.write(render())
    print(f"wrote {path}")
