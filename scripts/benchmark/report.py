# Turns the collected samples into medians (with min–max spread) and renders the one markdown
# table the harness prints: per scenario and concurrency, Tessera and OpenBao side by side.
import statistics

WIDE = 0.15   # show min–max when (max - min) / median exceeds this


class Results:
    """Samples per table row, in insertion order. kind "rate": wrk-like dicts; kind "value": numbers."""

    def __init__(self):
        self.rows = {}

    def row(self, key, scenario, point, kind, unit=None, note=None):
        if key not in self.rows:
            self.rows[key] = {"key": key, "scenario": scenario, "point": point, "kind": kind, "unit": unit,
                              "note": note, "tessera": [], "openbao": []}
        return self.rows[key]

    def add(self, key, scenario, point, kind, side, sample, unit=None, note=None):
        self.row(key, scenario, point, kind, unit, note)[side].append(sample)


def _stats(vals):
    vals = [v for v in vals if v is not None]
    if not vals:
        return None
    med = statistics.median(vals)
    return {"median": med, "min": min(vals), "max": max(vals), "n": len(vals),
            "wide": bool(med) and (max(vals) - min(vals)) / abs(med) > WIDE}


def summarize(results):
    out = []
    for r in results.rows.values():
        s = {k: r[k] for k in ("key", "scenario", "point", "kind", "unit", "note")}
        for side in ("tessera", "openbao"):
            samples = r[side]
            if not samples:
                s[side] = None
                continue
            if r["kind"] == "rate":
                s[side] = {m: _stats([x.get(m) for x in samples])
                           for m in ("rps", "p50_ms", "p99_ms", "server_cpu_us_per_req")}
                s[side]["errors"] = sum((x.get("non_2xx") or 0) + (x.get("socket_errors") or 0) + (x.get("errors") or 0)
                                        for x in samples)
            else:
                s[side] = {"value": _stats(samples)}
        t, o = s["tessera"], s["openbao"]
        key = "rps" if r["kind"] == "rate" else "value"
        if t and o and t[key] and o[key] and o[key]["median"]:
            s["ratio"] = t[key]["median"] / o[key]["median"]
        else:
            s["ratio"] = None
        if r["kind"] == "rate" and t and o and t["p99_ms"] and o["p99_ms"] and o["p99_ms"]["median"]:
            s["p99_ratio"] = t["p99_ms"]["median"] / o["p99_ms"]["median"]
        else:
            s["p99_ratio"] = None
        out.append(s)
    return out


def _num(v):
    if v is None:
        return "–"
    a = abs(v)
    if float(v).is_integer() and a < 1000:
        return str(int(v))
    if a >= 1000:
        return f"{v:,.0f}"
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    return f"{v:.3f}"


def _cell(st, unit=""):
    if not st:
        return "–"
    txt = _num(st["median"]) + unit
    if st["wide"] and st["n"] > 1:
        txt += f" ({_num(st['min'])}–{_num(st['max'])})"
    return txt


def _ratio(v, pct=False):
    if v is None:
        return "–"
    return f"{v * 100:.0f}%" if pct else f"{v:.2f}×"


def markdown(summary, extra_ratio=None):
    """extra_ratio: {row key: text} overriding the ratio cell (e.g. the bare-HTTP share)."""
    extra_ratio = extra_ratio or {}
    head = ("| scenario | c / point | Tessera req/s | T p50 ms | T p99 ms | T CPU µs/req "
            "| OpenBao req/s | O p50 ms | O p99 ms | O CPU µs/req | req/s T÷O | p99 T÷O |")
    lines = [head, "|" + "---|" * 12]
    for s in summary:
        t, o = s["tessera"], s["openbao"]
        if s["kind"] == "rate":
            def side(x):
                if not x:
                    return ["–"] * 4
                err = " ⚠" if x["errors"] else ""
                return [_cell(x["rps"]) + err, _cell(x["p50_ms"]), _cell(x["p99_ms"]), _cell(x["server_cpu_us_per_req"])]
            cells = side(t) + side(o) + [extra_ratio.get(s["key"], _ratio(s["ratio"])), _ratio(s["p99_ratio"])]
        else:
            u = f" {s['unit']}" if s["unit"] else ""
            cells = ([_cell(t["value"], u) if t else "–", "", "", ""] + [_cell(o["value"], u) if o else "–", "", "", ""]
                     + [extra_ratio.get(s["key"], _ratio(s["ratio"])), ""])
        point = s["point"] + (f" ({s['note']})" if s.get("note") else "")
        lines.append("| " + " | ".join([s["scenario"], point] + cells) + " |")
    return "\n".join(lines)
