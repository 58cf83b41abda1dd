#!/usr/bin/python3
"""Checks the Grafana dashboard (grafana/botbus.json) against a real botbusd, so
that it cannot rot when a metric is renamed or removed.

    BOTBUSD=build/daemon/botbusd python3 tests/grafana_dashboard_check.py grafana/botbus.json

1. Parses the dashboard and checks its frame: the DS_PROMETHEUS input, the
   `datasource` variable (Prometheus data sources) and the `instance`
   variable; every panel has a title, every panel but a row has a Prometheus
   datasource (the variable or the input) and queries with an expression.
2. Starts the real botbusd (the program named by $BOTBUSD) in a temporary
   data directory on loopback ports the kernel picks, with
   `--metrics-endpoint 127.0.0.1:0`, waits for its ready line (with a
   deadline, no sleeping), reads the metrics address from it and scrapes
   /metrics.
3. Takes every metric name out of every PromQL expression of the panels,
   the template variables and the annotations, and checks that the scrape
   exposes it: a counter or gauge under its name (a family declared by
   # TYPE without samples yet counts, like botbus_request_errors_total), a
   histogram as NAME_bucket, NAME_sum and NAME_count. A matcher label="value"
   on a family with samples must name a label and a value the scrape has.
4. With promtool at hand ($PROMTOOL, else .tools/usr/bin/promtool, which
   scripts/promtool.sh unpacks), every expression must parse as PromQL.

It exits 1 naming each panel and what is wrong, 2 when it cannot run the
check at all. The daemon is stopped with SIGTERM in every case.
Standard library only.
"""

from __future__ import annotations

import json
import os
import re
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

READY_WITHIN = 30.0  # seconds for botbusd to print its ready line
SCRAPE_WITHIN = 10.0
STOP_WITHIN = 20.0

REPO = Path(__file__).resolve().parents[1]

# Labels Prometheus attaches to every scraped series itself.
TARGET_LABELS = {"instance", "job"}


class SetupError(Exception):
    """The check could not run (no daemon, no scrape): exit 2."""


# ---------------------------------------------------------------- the dashboard


@dataclass
class Expression:
    where: str  # e.g. 'panel 9 "Requests by op" query A'
    expr: str


def walk_panels(panels: list) -> list[dict]:
    """Every panel, with those inside collapsed rows."""
    out = []
    for panel in panels:
        out.append(panel)
        out.extend(walk_panels(panel.get("panels") or []))
    return out


def is_prometheus_ref(ds: object, allowed_uids: set[str]) -> bool:
    if isinstance(ds, str):  # the pre-8.3 form: a name or a variable
        return ds in allowed_uids
    return isinstance(ds, dict) and ds.get("type") == "prometheus" and ds.get("uid") in allowed_uids


def check_dashboard(dashboard: dict) -> tuple[list[str], list[Expression]]:
    """The frame's problems, and every expression to check."""
    problems: list[str] = []
    expressions: list[Expression] = []

    inputs = dashboard.get("__inputs") or []
    if not any(i.get("name") == "DS_PROMETHEUS" and i.get("type") == "datasource" and i.get("pluginId") == "prometheus"
               for i in inputs):
        problems.append("dashboard: no __inputs entry DS_PROMETHEUS (type datasource, pluginId prometheus)")

    variables = {v.get("name"): v for v in (dashboard.get("templating") or {}).get("list") or []}
    ds_var = variables.get("datasource")
    if not ds_var or ds_var.get("type") != "datasource" or ds_var.get("query") != "prometheus":
        problems.append("dashboard: no template variable `datasource` of type datasource for prometheus")
    elif (ds_var.get("current") or {}).get("value") != "${DS_PROMETHEUS}":
        problems.append("variable $datasource: its current value is not ${DS_PROMETHEUS} (the data source "
                        "picked at import)")
    allowed_uids = {"${datasource}", "$datasource", "${DS_PROMETHEUS}"}

    instance = variables.get("instance")
    if not instance or instance.get("type") != "query":
        problems.append("dashboard: no query template variable `instance`")
    for name, variable in variables.items():
        if variable.get("type") != "query":
            continue
        where = f"variable ${name}"
        if not is_prometheus_ref(variable.get("datasource"), allowed_uids):
            problems.append(f"{where}: its datasource is not the Prometheus variable or input")
        query = variable.get("query")
        text = query.get("query", "") if isinstance(query, dict) else str(query or "")
        if name == "instance" and re.sub(r"\s+", "", text) != "label_values(botbus_ready,instance)":
            problems.append(f"{where}: query is {text!r}, not label_values(botbus_ready, instance)")
        expressions.extend(Expression(where, e) for e in variable_query_selectors(text))

    for annotation in (dashboard.get("annotations") or {}).get("list") or []:
        if annotation.get("expr"):
            where = f"annotation {annotation.get('name')!r}"
            if not is_prometheus_ref(annotation.get("datasource"), allowed_uids):
                problems.append(f"{where}: its datasource is not the Prometheus variable or input")
            expressions.append(Expression(where, annotation["expr"]))

    panels = walk_panels(dashboard.get("panels") or [])
    if not panels:
        problems.append("dashboard: no panels")
    seen_ids: dict[object, str] = {}
    for panel in panels:
        title = panel.get("title")
        where = f"panel {panel.get('id')} {title!r}"
        if not isinstance(title, str) or not title.strip():
            problems.append(f"{where}: no title")
        if panel.get("id") in seen_ids:
            problems.append(f"{where}: id {panel.get('id')} also used by {seen_ids[panel.get('id')]}")
        seen_ids[panel.get("id")] = where
        if not isinstance(panel.get("gridPos"), dict):
            problems.append(f"{where}: no gridPos")
        if panel.get("type") == "row":
            continue  # a row holds panels, it queries nothing
        if not is_prometheus_ref(panel.get("datasource"), allowed_uids):
            problems.append(f"{where}: datasource {panel.get('datasource')!r} is not "
                            "{type: prometheus, uid: ${datasource}}")
        targets = panel.get("targets") or []
        if not targets:
            problems.append(f"{where}: no queries")
        ref_ids = set()
        for target in targets:
            ref = target.get("refId")
            if ref in ref_ids:
                problems.append(f"{where}: refId {ref} twice")
            ref_ids.add(ref)
            if "datasource" in target and not is_prometheus_ref(target["datasource"], allowed_uids):
                problems.append(f"{where} query {ref}: datasource {target['datasource']!r} is not Prometheus")
            expr = target.get("expr")
            if not isinstance(expr, str) or not expr.strip():
                problems.append(f"{where} query {ref}: no expr")
                continue
            expressions.append(Expression(f"{where} query {ref}", expr))
    return problems, expressions


def variable_query_selectors(text: str) -> list[str]:
    """The PromQL inside a Prometheus variable query: label_values(SELECTOR,
    label), query_result(EXPR), metrics(regex) has none."""
    text = text.strip()
    m = re.fullmatch(r"label_values\((.*),\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)", text, re.S)
    if m:
        return [m.group(1)]
    m = re.fullmatch(r"query_result\((.*)\)", text, re.S)
    if m:
        return [m.group(1)]
    if re.fullmatch(r"(label_values\(\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)|label_names\(\)|metrics\(.*\))", text, re.S):
        return []
    return [text] if text else []


# ---------------------------------------------------------------- PromQL: metric names out of an expression

GRAFANA_RANGE_VARS = re.compile(r"\$__(rate_interval|interval|range)\b|\$\{__(rate_interval|interval|range)\}")
GRAFANA_VARS = re.compile(r"\$\{[^}]*\}|\$[A-Za-z_][A-Za-z0-9_]*|\[\[[^\]]*\]\]")
VAR_MARK = "\x01"  # what a template variable becomes: not part of any PromQL token

TOKEN = re.compile(r"""
    (?P<space>\s+|\#[^\n]*)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<number>0[xX][0-9a-fA-F]+|\d+(?:ms|[smhdwy])(?:\d+(?:ms|[smhdwy]))*|(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)
  | (?P<ident>[a-zA-Z_:][a-zA-Z0-9_:]*)
  | (?P<op>=~|!~|!=|==|<=|>=|.)
""", re.X | re.S)

KEYWORDS = {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left",
            "group_right", "inf", "nan", "atan2"}
GROUPING = {"by", "without", "on", "ignoring", "group_left", "group_right"}
AGGREGATIONS = {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk",
                "topk", "quantile", "limitk", "limit_ratio"}


@dataclass
class Selector:
    name: str
    matchers: list[tuple[str, str, str]] = field(default_factory=list)  # (label, op, value)


def substitute_grafana_variables(expr: str, other: str) -> str:
    return GRAFANA_VARS.sub(other, GRAFANA_RANGE_VARS.sub("5m", expr))


def tokenize(expr: str) -> list[tuple[str, str]]:
    tokens = []
    for m in TOKEN.finditer(expr):
        kind = m.lastgroup
        if kind != "space":
            tokens.append((kind, m.group()))
    return tokens


def unquote(text: str) -> str:
    if text.startswith("`"):
        return text[1:-1]
    try:
        return json.loads('"' + text[1:-1].replace('\\\'', "'") + '"') if text[0] in "\"'" else text
    except ValueError:
        return text[1:-1]


def selectors_of(expr: str) -> list[Selector]:
    """The vector selectors of a PromQL expression (Grafana's variables
    replaced), with their label matchers."""
    tokens = tokenize(substitute_grafana_variables(expr, VAR_MARK))
    found: list[Selector] = []
    i = 0
    bracket = 0
    while i < len(tokens):
        kind, text = tokens[i]
        following = tokens[i + 1][1] if i + 1 < len(tokens) else ""
        if text == "[":
            bracket += 1
        elif text == "]":
            bracket -= 1
        elif bracket:
            pass  # a range or subquery step: durations only
        elif kind == "ident" and text.lower() in GROUPING and following == "(":
            i = skip_parens(tokens, i + 1)  # by (a, b): label names
            continue
        elif kind == "ident" and following == "(":
            pass  # a function or an aggregation
        elif kind == "ident" and text.lower() in AGGREGATIONS and following.lower() in ("by", "without"):
            pass  # sum by (a) (...)
        elif kind == "ident" and text.lower() in KEYWORDS:
            pass
        elif kind == "ident":
            selector = Selector(text)
            i += 1
            if following == "{":
                selector.matchers, i = read_matchers(tokens, i)
            found.append(selector)
            continue
        elif text == "{":  # a selector without a name: {__name__="x"}
            matchers, i = read_matchers(tokens, i)
            names = [v for (label, op, v) in matchers if label == "__name__" and op == "="]
            if names:
                found.append(Selector(names[0], [m for m in matchers if m[0] != "__name__"]))
            continue
        i += 1
    return found


def skip_parens(tokens: list[tuple[str, str]], i: int) -> int:
    """From the '(' at i, the index after its ')'."""
    depth = 0
    while i < len(tokens):
        if tokens[i][1] == "(":
            depth += 1
        elif tokens[i][1] == ")":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return i


def read_matchers(tokens: list[tuple[str, str]], i: int) -> tuple[list[tuple[str, str, str]], int]:
    """From the '{' at i: the matchers, and the index after the '}'."""
    matchers = []
    i += 1
    while i < len(tokens) and tokens[i][1] != "}":
        if (tokens[i][0] in ("ident", "string") and i + 2 < len(tokens) and tokens[i + 1][1] in ("=", "!=", "=~", "!~")
                and tokens[i + 2][0] == "string"):
            label = unquote(tokens[i][1]) if tokens[i][0] == "string" else tokens[i][1]
            matchers.append((label, tokens[i + 1][1], unquote(tokens[i + 2][1])))
            i += 3
        else:
            i += 1
    return matchers, i + 1


# ---------------------------------------------------------------- the scrape


@dataclass
class Family:
    kind: str = "untyped"
    base: str = ""  # the family's name: NAME of NAME_bucket
    labels: dict[str, set[str]] = field(default_factory=dict)  # label -> values seen
    sampled: bool = False


SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+\S+")
LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?')


def parse_exposition(text: str) -> dict[str, Family]:
    """Exposed series names -> their family's kind and labels: a histogram
    is exposed as NAME_bucket, NAME_sum and NAME_count."""
    types: dict[str, str] = {}
    exposed: dict[str, Family] = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            parts = line.split()
            if len(parts) >= 4:
                types[parts[2]] = parts[3]
            continue
        if not line.strip() or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        if not m:
            continue
        family = exposed.setdefault(m.group(1), Family(base=m.group(1)))
        family.sampled = True
        for label, value in LABEL.findall(m.group(3) or ""):
            family.labels.setdefault(label, set()).add(value.encode().decode("unicode_escape"))
    for name, kind in types.items():
        if kind == "histogram":
            names = [name + "_bucket", name + "_sum", name + "_count"]
        elif kind == "summary":
            names = [name, name + "_sum", name + "_count"]
        else:
            names = [name]
        for series in names:  # declared: it exists even before its first sample
            family = exposed.setdefault(series, Family())
            family.kind, family.base = kind, name
    return exposed


# ---------------------------------------------------------------- the daemon


class Daemon:
    def __init__(self, program: str, data_dir: Path) -> None:
        self.stderr_path = data_dir.parent / "botbusd.stderr"
        args = [program, "--data-dir", str(data_dir), "--log-level", "warn",
                "--command-endpoint", "tcp://127.0.0.1:*", "--feed-endpoint", "tcp://127.0.0.1:*",
                "--metrics-endpoint", "127.0.0.1:0"]
        with self.stderr_path.open("wb") as stderr:
            self.process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=stderr, stdin=subprocess.DEVNULL)

    def ready_line(self) -> str:
        """The first line on stdout, waited for with a deadline."""
        assert self.process.stdout is not None
        received = b""
        deadline = time.monotonic() + READY_WITHIN
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            while b"\n" not in received:
                left = deadline - time.monotonic()
                if left <= 0 or not selector.select(left):
                    raise SetupError(f"botbusd printed no ready line within {READY_WITHIN:.0f} s; "
                                     f"got {received!r}; stderr:\n{self.stderr_text()}")
                chunk = os.read(self.process.stdout.fileno(), 4096)
                if not chunk:
                    raise SetupError(f"botbusd exited before it was ready (status {self.process.wait()}); "
                                     f"stderr:\n{self.stderr_text()}")
                received += chunk
        return received.split(b"\n", 1)[0].decode(errors="replace")

    def stderr_text(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> int | None:
        """SIGTERM and wait; kills it past the deadline (returns None then)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            status = self.process.wait(STOP_WITHIN)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            status = None
        if self.process.stdout is not None:
            self.process.stdout.close()
        return status


def scrape(program: str) -> str:
    with tempfile.TemporaryDirectory(prefix="grafana-check-") as temp:
        daemon = Daemon(program, Path(temp) / "data")
        stop_problem = None
        try:
            line = daemon.ready_line()
            if not line.startswith("botbusd ready "):
                raise SetupError(f"unexpected first line from botbusd: {line!r}")
            fields = dict(part.split("=", 1) for part in line.split()[2:] if "=" in part)
            if "metrics" not in fields:
                raise SetupError(f"the ready line names no metrics endpoint: {line!r}")
            url = f"http://{fields['metrics']}/metrics"
            try:
                with urllib.request.urlopen(url, timeout=SCRAPE_WITHIN) as response:
                    if response.status != 200:
                        raise SetupError(f"GET {url}: HTTP {response.status}")
                    return response.read().decode()
            except OSError as e:
                raise SetupError(f"GET {url}: {e}; stderr:\n{daemon.stderr_text()}") from e
        finally:
            status = daemon.stop()
            if status is None:
                stop_problem = f"botbusd did not exit within {STOP_WITHIN:.0f} s of SIGTERM (killed)"
            elif status != 0:
                stop_problem = f"botbusd exited with status {status} after SIGTERM"
            if stop_problem and sys.exc_info()[0] is None:
                raise SetupError(f"{stop_problem}; stderr:\n{daemon.stderr_text()}")


# ---------------------------------------------------------------- the checks


def check_names(expressions: list[Expression], exposed: dict[str, Family]) -> tuple[list[str], set[str]]:
    problems = []
    used: set[str] = set()
    for e in expressions:
        selectors_found = []
        for s in selectors_of(e.expr):  # each selector once per expression
            if s not in selectors_found:
                selectors_found.append(s)
        if not selectors_found:
            problems.append(f"{e.where}: no metric in {e.expr!r}")
        for s in selectors_found:
            used.add(s.name)
            family = exposed.get(s.name)
            if family is None:
                hint = ""
                base = re.sub(r"_(bucket|sum|count)$", "", s.name)
                if exposed.get(base + "_bucket") and s.name == base:
                    hint = f" ({s.name} is a histogram: use {s.name}_bucket, _sum or _count)"
                problems.append(f"{e.where}: metric {s.name} is not exposed by botbusd{hint}")
                continue
            if not family.sampled:
                continue  # declared, no series yet: its labels are unknown
            for label, op, value in s.matchers:
                if label in TARGET_LABELS or VAR_MARK in value:
                    continue
                if label not in family.labels:
                    problems.append(f"{e.where}: {s.name} has no label {label!r} "
                                    f"(it has: {', '.join(sorted(family.labels)) or 'none'})")
                elif op == "=" and value not in family.labels[label]:
                    problems.append(f"{e.where}: {s.name} has no series with {label}={value!r}")
    return problems, used


def find_promtool() -> str | None:
    named = os.environ.get("PROMTOOL")
    if named:
        return named
    candidate = REPO / ".tools" / "usr" / "bin" / "promtool"
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    return shutil.which("promtool")


def check_promql(expressions: list[Expression], promtool: str) -> list[str]:
    """Every expression parses: promtool check rules on them as recording rules."""
    lines = ["groups:", "  - name: grafana_dashboard", "    rules:"]
    for n, e in enumerate(expressions):
        lines += [f"      - record: dashboard_expr_{n}",
                  f"        expr: {json.dumps(substitute_grafana_variables(e.expr, '1'))}"]
    with tempfile.NamedTemporaryFile("w", suffix=".rules.yml", delete=False) as rules:
        rules.write("\n".join(lines) + "\n")
    try:
        run = subprocess.run([promtool, "check", "rules", rules.name], capture_output=True, text=True, timeout=60)
    finally:
        os.unlink(rules.name)
    if run.returncode == 0:
        return []
    output = (run.stdout + run.stderr).strip()
    problems = []
    for n in sorted({int(n) for n in re.findall(r"dashboard_expr_(\d+)", output)}):
        problems.append(f"{expressions[n].where}: not valid PromQL: {expressions[n].expr!r}")
    problems.append("promtool check rules: " + output.replace("\n", "\n    "))
    return problems


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(f"usage: BOTBUSD=path/to/botbusd {argv[0]} path/to/botbus.json", file=sys.stderr)
        return 2
    started = time.monotonic()
    path = Path(argv[1])
    try:
        dashboard = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        print(f"FAIL {path}: cannot read the dashboard: {e}", file=sys.stderr)
        return 1
    problems, expressions = check_dashboard(dashboard)

    program = os.environ.get("BOTBUSD") or str(REPO / "build" / "daemon" / "botbusd")
    if not (os.path.isfile(program) and os.access(program, os.X_OK)):
        print(f"cannot run the check: no botbusd at {program} (set BOTBUSD)", file=sys.stderr)
        return 2
    try:
        text = scrape(program)
    except SetupError as e:
        print(f"cannot run the check: {e}", file=sys.stderr)
        return 2
    exposed = parse_exposition(text)
    name_problems, used = check_names(expressions, exposed)
    problems += name_problems

    promtool = find_promtool()
    if promtool:
        problems += check_promql(expressions, promtool)
        syntax = "PromQL checked with promtool"
    else:
        syntax = "PromQL syntax not checked: no promtool (scripts/promtool.sh unpacks it)"

    panels = [p for p in walk_panels(dashboard.get("panels") or []) if p.get("type") != "row"]
    elapsed = time.monotonic() - started
    if problems:
        for problem in problems:
            print(f"FAIL {problem}", file=sys.stderr)
        print(f"{path}: {len(problems)} problem(s) in {len(panels)} panels ({elapsed:.1f} s)", file=sys.stderr)
        return 1
    families = {exposed[n].base for n in used}
    unused = sorted({f.base for f in exposed.values()} - families)
    print(f"ok {path}: {len(panels)} panels, {len(expressions)} expressions, {len(families)} metric families, "
          f"all exposed by {program}; {syntax} ({elapsed:.1f} s)")
    if unused:
        print(f"note: exposed but on no panel: {', '.join(unused)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
