#!/usr/bin/env python3
"""Offline checks of the recipes in deploy/ for running trailproof sharded.

    python3 deploy/check.py validate
    python3 deploy/check.py commands --recipe kubernetes|batch|github --source SOURCE --out DIR [--shards N]

`validate` loads every recipe and checks it against the engine's own definitions, with no
network and no cluster or account:

- kubernetes/*.yaml: each document is read into the official Kubernetes Python client's model
  for its kind (V1Job, V1PersistentVolumeClaim, V1ServiceAccount, ...) by the client's own
  deserializer, which enforces required fields; before that, every field is checked against
  the model's field names and types (the deserializer alone would drop an unknown field, such
  as a misspelt `completionMode`, without a word). Then what Kubernetes' API server would
  refuse (podFailurePolicy rules, restartPolicy, volume names) and what the recipe needs: an
  Indexed Job whose completions equal --shard-total, reports on a ReadWriteMany claim that the
  merge Job mounts too, the ServiceAccount with its IRSA role.
- batch/*.json: each file against botocore's model of the AWS Batch API (RegisterJobDefinition,
  SubmitJob): types, required and unknown members, and enum values, which botocore's own
  validator does not check. Then Ref:: parameters, the array size, the merge's plain
  dependency on the whole array job (never N_TO_N or SEQUENTIAL), Fargate's CPU and memory
  pairs, and the retry strategy against the exit codes.
- github/*.yml: YAML, whose `on:` PyYAML reads as the boolean True (YAML 1.1), then the
  structure: the matrix is 1..N and the run line says /N, artifacts are named per shard and
  downloaded by a pattern with merge-multiple, the merge job needs the shards and runs merge.
- Dockerfile, run.sh: the stages the recipes use (trailproof, trailproof-aws), `sh -n`.

`validate` prints one line per recipe on standard output, then each problem on standard error
as `FILE: what is wrong`, and exits 1 when there is any (0 otherwise). `commands` exits 2, naming
the file, when a recipe cannot be read.

Every YAML and JSON file is also refused for a key given twice (kubectl and the AWS CLI refuse
it; PyYAML and json keep the last one silently).

Exit codes are checked by running each recipe's own wrapper (`sh -c` in the Kubernetes
container and the Batch job definition, the workflow's `run:` script under the shell GitHub
uses) with stand-ins for `trailproof` and `aws` on PATH that exit 0, 1 or 2: a shard's 1
(tampering found and reported) must leave the shard succeeded, its 2 must fail it, the merge's
exit code must come through unchanged, and the engine's retry rules must not rerun a merge's
verdict or retry a shard's 2 forever.

`commands` prints, as JSON, the processes a recipe runs, taken from the recipe files:

    [{"argv": ["trailproof", "verify", ...], "env": {"JOB_COMPLETION_INDEX": "0", ...}},
     ...one per shard...,
     {"argv": ["trailproof", "merge", ...], "env": {...}}]

- kubernetes: the verify container's command and args of the Indexed Job, with `$(VAR)`
  expanded from the container's env as the kubelet does, for JOB_COMPLETION_INDEX 0..N-1 (set
  by the Job controller); then the merge Job's container.
- batch: the job definition's command with each `Ref::name` element replaced by the
  parameters (the definition's defaults, overridden by submit-shards.json's, or
  submit-merge.json's), for AWS_BATCH_JOB_ARRAY_INDEX 0..N-1 with AWS_BATCH_JOB_ARRAY_SIZE=N,
  AWS_BATCH_JOB_ATTEMPT=1 and AWS_BATCH_JQ_NAME (the submit file's queue); the job ID and the
  compute environment's name are not known before submission and are left out.
- github: the shard job's `run:` script with `${{ matrix.KEY }}` (1..N), `${{ env.X }}`, and
  `vars`, `secrets`, `inputs` (empty, as GitHub gives an unset one) substituted, then the
  merge job's.

Each env holds the variables the engine sets for the shard and the literal ones the recipe
sets (a Kubernetes `valueFrom` cannot be known offline and is left out).

Reduction to the trailproof invocation: where a recipe wraps trailproof in a shell (`sh -c
SCRIPT NAME ARGS...`, a `run:` script), the step is the one line of the script that starts
with `trailproof verify` (for a shard) or `trailproof merge` (for the merge), read as POSIX sh
reads one simple command: quotes and backslashes, `$1`, `${10}`, `"$@"` (the wrapper's arguments,
one word each), `$NAME` and `${NAME}` from the env, up to the first unquoted `;`, `&&`, `||`,
`|` or newline. Everything else in the script (the exit-code mapping, `aws s3 cp` of reports
to and from S3) is left out; any other shell construct on that line (a command substitution,
`${X%y}`, a redirection) is refused rather than guessed. Only trailproof runs in the steps, so
they need no AWS.

Then the recipe's source (what follows `verify`) is replaced by SOURCE wherever it appears as
a whole argument or env value, and the recipe's report folder (the shard's `--report
json=FOLDER/`) by DIR/, in the shards' and the merge's paths alike; a merge report written
outside that folder with a relative path (the workflow's `--report junit=merged.xml`) is
placed in DIR too. With --shards N, N shards are printed, and `--shard-total`, `--shard K/M`
and the engine's size variable say N. Nothing is created: trailproof makes DIR itself.
"""

from __future__ import annotations

import argparse
import difflib
import fnmatch
import json
import os
import re
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

# --------------------------------------------------------------------------------------------
# Problems and errors


class RecipeError(Exception):
    """A recipe that `commands` cannot read: (file, message)."""

    def __init__(self, path, message):
        super().__init__(f"{show(path)}: {message}")
        self.path = path
        self.message = message


class Problems:
    def __init__(self):
        self.items = []

    def add(self, path, message):
        self.items.append((path, message))

    def __bool__(self):
        return bool(self.items)


def show(path):
    path = Path(path)
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def kind_of(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def require_packages():
    missing = []
    for module, package in (("yaml", "PyYAML"), ("kubernetes", "kubernetes"), ("botocore", "botocore")):
        try:
            __import__(module)
        except ImportError:
            missing.append(package)
    if missing:
        sys.exit(
            f"check.py needs {', '.join(missing)}: python3 -m pip install -r {show(HERE / 'requirements.txt')}"
        )


# --------------------------------------------------------------------------------------------
# Loading YAML and JSON (a key given twice is an error, as kubectl and the AWS CLI make it)


def load_yaml_docs(path):
    import yaml

    class StrictLoader(yaml.SafeLoader):
        pass

    def mapping(loader, node, deep=False):
        loader.flatten_mapping(node)
        seen = set()
        for key_node, _ in node.value:
            key = loader.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
            except TypeError:
                continue
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping",
                    node.start_mark,
                    f"the key {key!r} is given twice",
                    key_node.start_mark,
                )
            seen.add(key)
        return loader.construct_mapping(node, deep=deep)

    StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    try:
        text = Path(path).read_text()
        return [doc for doc in yaml.load_all(text, Loader=StrictLoader) if doc is not None]
    except (OSError, yaml.YAMLError) as e:
        raise RecipeError(path, f"not YAML: {e}") from None


def load_json(path):
    def pairs(items):
        out = {}
        for key, value in items:
            if key in out:
                raise ValueError(f"the key {key!r} is given twice")
            out[key] = value
        return out

    try:
        return json.loads(Path(path).read_text(), object_pairs_hook=pairs)
    except (OSError, ValueError) as e:
        raise RecipeError(path, f"not JSON: {e}") from None


# --------------------------------------------------------------------------------------------
# Reading one simple command of POSIX sh, and finding the trailproof invocation in a script

_SPLICE = object()
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _parameter(text, i, positional, env):
    """Expands the parameter at text[i] == '$'; returns (value or _SPLICE, next index)."""
    j = i + 1
    if j >= len(text):
        return "$", j
    c = text[j]
    if c == "{":
        end = text.find("}", j)
        if end < 0:
            raise ValueError("an unclosed ${")
        name = text[j + 1 : end]
        nxt = end + 1
        if not (name.isdigit() or name == "@" or _NAME.fullmatch(name)):
            raise ValueError(f"${{{name}}} is more than a plain parameter")
    elif c == "@" or c.isdigit():
        name, nxt = c, j + 1
    elif c == "_" or c.isalpha():
        m = _NAME.match(text, j)
        name, nxt = m.group(0), m.end()
    elif c in "(`":
        raise ValueError("a command substitution")
    elif c in "*#?$!-":
        raise ValueError(f"${c}")
    else:
        return "$", j
    if name == "@":
        return _SPLICE, nxt
    if name.isdigit():
        k = int(name)
        return (positional[k] if k < len(positional) else ""), nxt
    if name not in env:
        raise ValueError(f"${name} is not set")
    return env[name], nxt


def shell_words(text, positional=("sh",), env=None):
    """The words of the simple command at the start of text, as sh would pass them."""
    env = env or {}
    words, cur = [], []
    started = splice = False
    state = None
    i, n = 0, len(text)

    def end_word():
        nonlocal cur, started, splice
        if splice:
            if cur:
                raise ValueError('"$@" joined to other text')
            words.extend(positional[1:])
        elif started:
            words.append("".join(cur))
        cur, started, splice = [], False, False

    while i < n:
        c = text[i]
        if state == "'":
            if c == "'":
                state = None
            else:
                cur.append(c)
            i += 1
            continue
        if state == '"':
            if c == '"':
                state = None
                i += 1
            elif c == "\\" and i + 1 < n and text[i + 1] in '$`"\\\n':
                if text[i + 1] != "\n":
                    cur.append(text[i + 1])
                i += 2
            elif c == "$":
                value, i = _parameter(text, i, positional, env)
                if value is _SPLICE:
                    if cur:
                        raise ValueError('"$@" joined to other text')
                    splice = True
                else:
                    cur.append(value)
            elif c == "`":
                raise ValueError("a command substitution")
            else:
                cur.append(c)
                i += 1
            continue
        if c in " \t":
            end_word()
            i += 1
        elif c in "\n;&|)":
            break
        elif c in "<>(":
            raise ValueError("a redirection or subshell")
        elif c == "#" and not started and not cur:
            break
        elif c == "'" or c == '"':
            state = c
            started = True
            i += 1
        elif c == "\\":
            if i + 1 < n and text[i + 1] == "\n":
                i += 2
            elif i + 1 < n:
                cur.append(text[i + 1])
                started = True
                i += 2
            else:
                i += 1
        elif c == "$":
            value, i = _parameter(text, i, positional, env)
            if value is _SPLICE:
                if cur:
                    raise ValueError("$@ joined to other text")
                splice = True
            else:
                # Unquoted: split into fields at blanks.
                fields = value.split()
                if not fields:
                    continue
                cur.append(fields[0])
                started = True
                for field in fields[1:]:
                    end_word()
                    cur.append(field)
                    started = True
                if value[-1:].isspace():
                    end_word()
        elif c == "`":
            raise ValueError("a command substitution")
        else:
            cur.append(c)
            started = True
            i += 1
    if state:
        raise ValueError("an unterminated quote")
    end_word()
    return words


_INVOCATION = re.compile(r"(?m)^[ \t]*(?:exec[ \t]+)?(?=trailproof(?:[ \t]|$))")


def trailproof_lines(script):
    """The offsets in script where a line runs trailproof."""
    return [m.end() for m in _INVOCATION.finditer(script)]


def script_invocation(script, subcommand, positional, env):
    """The argv of the one `trailproof SUBCOMMAND` line of script."""
    found = []
    for start in trailproof_lines(script):
        line = script[start:].split("\n", 1)[0]
        try:
            words = shell_words(script[start:], positional, env)
        except ValueError as e:
            raise ValueError(f"cannot read the line `{line.strip()}`: {e}") from None
        if len(words) > 1 and words[1] == subcommand:
            found.append(words)
    if not found:
        raise ValueError(f"no line of the script runs `trailproof {subcommand}`")
    if len(found) > 1:
        raise ValueError(
            f"{len(found)} lines of the script run `trailproof {subcommand}`; which one is meant?"
        )
    return found[0]


SHELLS = {"sh", "bash", "dash", "ash"}


def reduce_argv(argv, env, subcommand):
    """The trailproof invocation a process argv amounts to (see the module's doc)."""
    if not argv:
        raise ValueError("no command")
    program = os.path.basename(argv[0])
    if program == "trailproof":
        if len(argv) < 2 or argv[1] != subcommand:
            raise ValueError(
                f"runs trailproof {argv[1] if len(argv) > 1 else ''}, not trailproof {subcommand}".replace(
                    "  ", " "
                )
            )
        return ["trailproof"] + list(argv[1:])
    if program in SHELLS:
        if len(argv) < 3 or argv[1] != "-c":
            raise ValueError(f"{argv[0]} without -c SCRIPT")
        positional = [argv[3] if len(argv) > 3 else argv[0]] + list(argv[4:])
        return script_invocation(argv[2], subcommand, positional, env)
    raise ValueError(f"runs {argv[0]}, neither trailproof nor a shell")


def option_value(argv, name):
    """The value of --name VALUE or --name=VALUE (the last one given), or None."""
    value = None
    for i, tok in enumerate(argv):
        if tok == name and i + 1 < len(argv):
            value = argv[i + 1]
        elif tok.startswith(name + "="):
            value = tok[len(name) + 1 :]
    return value


def option_values(argv, name):
    out = []
    for i, tok in enumerate(argv):
        if tok == name and i + 1 < len(argv):
            out.append(argv[i + 1])
        elif tok.startswith(name + "="):
            out.append(tok[len(name) + 1 :])
    return out


def report_dir(argv):
    """The folder of a shard's `--report json=FOLDER/`, or None."""
    for value in option_values(argv, "--report"):
        fmt, _, path = value.partition("=")
        if fmt == "json" and path.endswith("/"):
            return path
    return None


def verify_source(argv):
    if len(argv) > 2 and argv[1] == "verify" and not argv[2].startswith("-"):
        return argv[2]
    return None


def merge_inputs(argv):
    """The positional arguments of `trailproof merge` (the options it takes have values)."""
    out, skip = [], False
    for tok in argv[2:]:
        if skip:
            skip = False
        elif tok in ("--format", "--color", "--report", "--asff-product-arn"):
            skip = True
        elif not tok.startswith("-"):
            out.append(tok)
    return out


def norm_dir(path):
    path = path.rstrip("/")
    return (path or ".") + "/"


def set_total(argv, old, new):
    """argv with the shard count old replaced by new, in --shard-total N and --shard K/N."""
    out = list(argv)
    for i, tok in enumerate(out):
        prev = out[i - 1] if i else None
        if prev == "--shard-total" and tok == str(old):
            out[i] = str(new)
        elif tok == f"--shard-total={old}":
            out[i] = f"--shard-total={new}"
        elif prev == "--shard" or tok.startswith("--shard="):
            head, value = ("--shard=", tok[8:]) if tok.startswith("--shard=") else ("", tok)
            m = re.fullmatch(r"(\d+)/(\d+)", value)
            if m and m.group(2) == str(old):
                out[i] = f"{head}{m.group(1)}/{new}"
    return out


def substitute(steps, source, recipe_source, out_dir, recipe_dir):
    """Replaces the recipe's source by SOURCE and its report folder by DIR (module doc)."""
    new_dir = norm_dir(out_dir)
    old_dir = norm_dir(recipe_dir)

    def place(path, relocate):
        if path == old_dir or path.rstrip("/") == old_dir.rstrip("/"):
            return new_dir
        if path.startswith(old_dir):
            return new_dir + path[len(old_dir) :]
        if relocate and path != "-" and not os.path.isabs(path):
            return new_dir + path
        return path

    result = []
    for step in steps:
        argv = []
        prev = None
        merge = len(step["argv"]) > 1 and step["argv"][1] == "merge"
        for tok in step["argv"]:
            if tok == recipe_source:
                tok = source
            elif prev == "--report" or tok.startswith("--report="):
                head = "--report=" if tok.startswith("--report=") else ""
                fmt, eq, path = tok[len(head) :].partition("=")
                if eq:
                    tok = f"{head}{fmt}={place(path, merge)}"
            elif not tok.startswith("-") and (
                tok.startswith(old_dir) or tok.rstrip("/") == old_dir.rstrip("/")
            ):
                tok = place(tok, False)
            argv.append(tok)
            prev = tok
        env = {k: (source if v == recipe_source else v) for k, v in step["env"].items()}
        result.append({"argv": argv, "env": env})
    return result


# --------------------------------------------------------------------------------------------
# Running a recipe's wrapper with stand-ins for trailproof and aws

FAKE_TRAILPROOF = r"""#!/bin/sh
{ printf 'trailproof'; for a in "$@"; do printf ' %s' "$a"; done; echo; } >> "$FAKE_LOG"
prev=
for a in "$@"; do
  if [ "$prev" = --report ]; then
    case "$a" in
      json=*/) d="${a#json=}"; mkdir -p "$d" && echo '{}' > "${d}shard-0001-of-0001.json" ;;
    esac
  fi
  prev="$a"
done
exit "$FAKE_TRAILPROOF_RC"
"""

FAKE_AWS = r"""#!/bin/sh
{ printf 'aws'; for a in "$@"; do printf ' %s' "$a"; done; echo; } >> "$FAKE_LOG"
exit "$FAKE_AWS_RC"
"""


def run_wrapper(argv, env, recipe_dir, trailproof_rc, aws_rc=0, script_file=False):
    """Runs argv (a shell and its script) with the stand-ins; returns (exit code, calls).

    The recipe's report folder is replaced by a temporary one in the arguments, so that the
    stand-in's report lands there; with script_file, argv[-1] is a script's text, run from a
    file (as GitHub runs `run:`)."""
    with tempfile.TemporaryDirectory(prefix="trailproof-check-") as tmp:
        tmp = Path(tmp)
        bin_dir = tmp / "bin"
        bin_dir.mkdir()
        for name, text in (("trailproof", FAKE_TRAILPROOF), ("aws", FAKE_AWS)):
            p = bin_dir / name
            p.write_text(text)
            p.chmod(p.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        reports = str(tmp / "reports") + "/"
        old = norm_dir(recipe_dir) if recipe_dir else None

        def swap(s):
            return s.replace(old, reports) if old else s

        args = [swap(a) for a in argv]
        work = tmp / "work"
        work.mkdir()
        if script_file:
            script = work.parent / "step.sh"
            script.write_text(args[-1])
            args = args[:-1] + [str(script)]
        log = tmp / "calls"
        log.write_text("")
        run_env = {k: swap(v) for k, v in env.items()}
        run_env.update(
            PATH=f"{bin_dir}:/usr/bin:/bin",
            HOME=str(tmp),
            FAKE_LOG=str(log),
            FAKE_TRAILPROOF_RC=str(trailproof_rc),
            FAKE_AWS_RC=str(aws_rc),
        )
        try:
            done = subprocess.run(args, cwd=work, env=run_env, capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise ValueError(f"could not run {args[0]}: {e}") from None
        calls = [line for line in log.read_text().splitlines() if line]
        calls = [c.replace(reports, old or reports) for c in calls]
        return done.returncode, calls


# --------------------------------------------------------------------------------------------
# Kubernetes


def k8s_models():
    import kubernetes.client.models as models

    return models


QUANTITY_MAPS = {"limits", "requests", "capacity", "allocatable", "hard", "used"}


def k8s_type_problems(value, type_str, path, out, key=None):
    """Unknown fields and wrong types, by the client model's own field list."""
    if value is None:
        return
    m = re.fullmatch(r"list\[(.*)\]", type_str)
    if m:
        if not isinstance(value, list):
            out.append(f"{path}: a list is expected, not {kind_of(value)}")
            return
        for i, item in enumerate(value):
            k8s_type_problems(item, m.group(1), f"{path}[{i}]", out)
        return
    m = re.fullmatch(r"dict\[([^,]*), (.*)\]", type_str)
    if m:
        if not isinstance(value, dict):
            out.append(f"{path}: a mapping is expected, not {kind_of(value)}")
            return
        for k, item in value.items():
            if not isinstance(k, str):
                out.append(f"{path}: the key {k!r} is not a string")
            if key in QUANTITY_MAPS and isinstance(item, (int, float)) and not isinstance(item, bool):
                continue  # a quantity: 1 and "1" alike
            k8s_type_problems(item, m.group(2), f"{path}.{k}", out)
        return
    if type_str == "str":
        if not isinstance(value, str):
            out.append(f"{path}: a string is expected, not {kind_of(value)} ({value!r}; quote it)")
        return
    if type_str == "int":
        if not isinstance(value, int) or isinstance(value, bool):
            out.append(f"{path}: an integer is expected, not {kind_of(value)} ({value!r})")
        return
    if type_str == "float":
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            out.append(f"{path}: a number is expected, not {kind_of(value)} ({value!r})")
        return
    if type_str == "bool":
        if not isinstance(value, bool):
            out.append(f"{path}: true or false is expected, not {kind_of(value)} ({value!r})")
        return
    if type_str in ("object", "datetime", "date"):
        return
    klass = getattr(k8s_models(), type_str, None)
    if klass is None:
        return
    if not isinstance(value, dict):
        out.append(f"{path}: a mapping ({type_str}) is expected, not {kind_of(value)}")
        return
    by_json = {j: attr for attr, j in klass.attribute_map.items()}
    for k, item in value.items():
        if k not in by_json:
            close = difflib.get_close_matches(str(k), list(by_json), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            out.append(f"{path}: {type_str} has no field {k!r}{hint}")
            continue
        k8s_type_problems(item, klass.openapi_types[by_json[k]], f"{path}.{k}" if path else k, out, key=k)


def k8s_class_name(doc):
    api = str(doc.get("apiVersion", ""))
    kind = str(doc.get("kind", ""))
    version = api.split("/")[-1]
    group = api.split("/")[0] if "/" in api else ""
    candidates = [f"{version.capitalize()}{kind}"]
    if group:
        candidates.append(f"{group.split('.')[0].capitalize()}{version.capitalize()}{kind}")
    models = k8s_models()
    for name in candidates:
        if hasattr(models, name):
            return name
    return None


def k8s_deserialize(doc, class_name):
    """The client's own deserializer (required fields raise ValueError)."""
    from kubernetes.client import ApiClient

    return ApiClient()._ApiClient__deserialize(doc, class_name)


def k8s_documents(problems=None):
    """[(path, index, doc, model object or None)] for every YAML document in kubernetes/."""
    out = []
    for path in sorted((HERE / "kubernetes").glob("*.y*ml")):
        try:
            docs = load_yaml_docs(path)
        except RecipeError as e:
            if problems is None:
                raise
            problems.add(path, e.message)
            continue
        for index, doc in enumerate(docs):
            where = f"document {index + 1}" if len(docs) > 1 else ""
            if not isinstance(doc, dict):
                if problems is not None:
                    problems.add(path, f"{where or 'the document'} is not a mapping")
                continue
            class_name = k8s_class_name(doc)
            if class_name is None:
                if problems is not None:
                    problems.add(
                        path,
                        f"{where} apiVersion {doc.get('apiVersion')!r} kind {doc.get('kind')!r}: the Kubernetes client has no such type".strip(),
                    )
                out.append((path, index, doc, None))
                continue
            model = None
            if problems is not None:
                found = []
                k8s_type_problems(doc, class_name, "", found)
                for p in found:
                    problems.add(path, f"{where + ': ' if where else ''}{p}")
                if found:
                    out.append((path, index, doc, None))
                    continue
            try:
                model = k8s_deserialize(doc, class_name)
            except (ValueError, TypeError, AttributeError) as e:
                if problems is not None:
                    problems.add(path, f"{where + ': ' if where else ''}not a valid {class_name}: {e}")
                elif not isinstance(e, ValueError):
                    raise RecipeError(path, f"not a valid {class_name}: {e}") from None
            out.append((path, index, doc, model))
    return out


def k8s_expand(text, env):
    """Kubernetes' $(VAR) expansion: $$ is $, $(VAR) of an unknown VAR stays as written."""

    def one(m):
        if m.group(0) == "$$":
            return "$"
        name = m.group(1)
        return env[name] if name in env else m.group(0)

    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)", one, text)


def k8s_container_env(container, extra):
    """The container's literal env, each value expanded by the ones before it; then extra."""
    env = {}
    for item in container.get("env") or []:
        if isinstance(item, dict) and "value" in item and "name" in item:
            env[str(item["name"])] = k8s_expand(str(item["value"]), env)
    env.update(extra)
    return env


def k8s_container_argv(container):
    """command + args (the image's entrypoint, trailproof, when command is not given)."""
    command = list(container.get("command") or ["trailproof"])
    return command + list(container.get("args") or [])


def k8s_jobs(docs):
    """(shard Job, merge Job) documents with their paths: the Jobs running verify and merge."""
    shard = merge = None
    for path, _, doc, _ in docs:
        if doc.get("kind") != "Job":
            continue
        for container in ((doc.get("spec") or {}).get("template") or {}).get("spec", {}).get(
            "containers"
        ) or []:
            argv = [
                k8s_expand(str(a), k8s_container_env(container, {"JOB_COMPLETION_INDEX": "0"}))
                for a in k8s_container_argv(container)
            ]
            for sub in ("verify", "merge"):
                try:
                    reduce_argv(argv, k8s_container_env(container, {"JOB_COMPLETION_INDEX": "0"}), sub)
                except ValueError:
                    continue
                entry = (path, doc, container)
                if sub == "verify":
                    if shard is not None:
                        raise RecipeError(
                            path, f"a second Job runs trailproof verify (the first is in {show(shard[0])})"
                        )
                    shard = entry
                else:
                    if merge is not None:
                        raise RecipeError(
                            path, f"a second Job runs trailproof merge (the first is in {show(merge[0])})"
                        )
                    merge = entry
    if shard is None:
        raise RecipeError(HERE / "kubernetes", "no Job runs trailproof verify")
    if merge is None:
        raise RecipeError(HERE / "kubernetes", "no Job runs trailproof merge")
    return shard, merge


def k8s_commands(source, out_dir, shards):
    docs = k8s_documents()
    (spath, sjob, scontainer), (mpath, mjob, mcontainer) = k8s_jobs(docs)
    completions = (sjob.get("spec") or {}).get("completions")
    if not isinstance(completions, int) or completions < 1:
        raise RecipeError(spath, "the shard Job has no completions")
    n = shards or completions
    steps = []
    for i in range(n):
        env = k8s_container_env(scontainer, {"JOB_COMPLETION_INDEX": str(i)})
        argv = [k8s_expand(str(a), env) for a in k8s_container_argv(scontainer)]
        try:
            argv = reduce_argv(argv, env, "verify")
        except ValueError as e:
            raise RecipeError(spath, str(e)) from None
        steps.append({"argv": set_total(argv, completions, n), "env": env})
    env = k8s_container_env(mcontainer, {})
    argv = [k8s_expand(str(a), env) for a in k8s_container_argv(mcontainer)]
    try:
        argv = reduce_argv(argv, env, "merge")
    except ValueError as e:
        raise RecipeError(mpath, str(e)) from None
    steps.append({"argv": argv, "env": env})
    return finish(steps, spath, source, out_dir)


def finish(steps, path, source, out_dir):
    shard = steps[0]["argv"]
    recipe_source = verify_source(shard)
    recipe_dir = report_dir(shard)
    if recipe_source is None:
        raise RecipeError(path, "the shard's verify has no source after `verify`")
    if recipe_dir is None:
        raise RecipeError(path, "the shard's verify has no --report json=FOLDER/")
    return substitute(steps, source, recipe_source, out_dir, recipe_dir)


def k8s_failure_action(spec, container_name, code):
    """What the Job does with a pod whose container exited with code (podFailurePolicy)."""
    for rule in (spec.get("podFailurePolicy") or {}).get("rules") or []:
        req = rule.get("onExitCodes")
        if not req:
            continue
        if req.get("containerName") not in (None, container_name):
            continue
        values = req.get("values") or []
        hit = code in values if req.get("operator") == "In" else code not in values
        if hit:
            return rule.get("action")
    return "Count"


def k8s_validate(problems):
    docs = k8s_documents(problems)
    if not docs:
        problems.add(HERE / "kubernetes", "no manifests")
        return
    by_kind = {}
    for path, _, doc, model in docs:
        by_kind.setdefault(doc.get("kind"), []).append((path, doc, model))
        name = (doc.get("metadata") or {}).get("name")
        if not name:
            problems.add(path, f"{doc.get('kind')}: metadata.name is missing")
        if doc.get("kind") == "Job":
            k8s_validate_job(path, doc, problems)
    try:
        (spath, sjob, scontainer), (mpath, mjob, mcontainer) = k8s_jobs(docs)
    except RecipeError as e:
        problems.add(e.path, e.message)
        return
    spec = sjob.get("spec") or {}
    pod = (spec.get("template") or {}).get("spec") or {}
    env0 = k8s_container_env(scontainer, {"JOB_COMPLETION_INDEX": "0"})
    argv = reduce_argv([k8s_expand(str(a), env0) for a in k8s_container_argv(scontainer)], env0, "verify")
    if spec.get("completionMode") != "Indexed":
        problems.add(
            spath,
            f"the shard Job's completionMode is {spec.get('completionMode')!r}: it must be Indexed, or pods get no JOB_COMPLETION_INDEX",
        )
    if option_value(argv, "--shard-env") != "kubernetes":
        problems.add(
            spath,
            f"the shard's verify must take its shard from the Job: --shard-env kubernetes (it runs {' '.join(argv)})",
        )
    total = option_value(argv, "--shard-total")
    completions = spec.get("completions")
    if total is None:
        problems.add(spath, "--shard-env kubernetes needs --shard-total N (the Job's completions)")
    elif str(completions) != total:
        problems.add(
            spath,
            f"--shard-total {total} differs from the Job's completions ({completions}): shards would be missing or out of range",
        )
    parallelism = spec.get("parallelism")
    if isinstance(parallelism, int) and isinstance(completions, int) and parallelism > completions:
        problems.add(spath, f"parallelism {parallelism} is more than completions {completions}")
    rdir = report_dir(argv)
    if rdir is None:
        problems.add(
            spath, "the shard's verify writes no --report json=FOLDER/ (a folder, ending in /) for the merge"
        )
    # The report folder is on a claim, and the merge Job mounts the same claim there.
    claims = {
        c.get("metadata", {}).get("name"): (p, c) for p, c, _ in by_kind.get("PersistentVolumeClaim", [])
    }
    shard_claim = k8s_claim_at(pod, scontainer, rdir) if rdir else None
    if rdir and shard_claim is None:
        problems.add(
            spath,
            f"{rdir} is not on a PersistentVolumeClaim volume: the merge, another pod, could not read the reports",
        )
    elif rdir:
        if shard_claim not in claims:
            problems.add(spath, f"the claim {shard_claim!r} is not defined in kubernetes/")
        else:
            cpath, claim = claims[shard_claim]
            modes = (claim.get("spec") or {}).get("accessModes") or []
            if isinstance(parallelism, int) and parallelism > 1 and "ReadWriteMany" not in modes:
                problems.add(
                    cpath,
                    f"{parallelism} shard pods write to {shard_claim!r} at once, on any node: its accessModes must include ReadWriteMany (it has {modes})",
                )
            if not ((claim.get("spec") or {}).get("resources") or {}).get("requests", {}).get("storage"):
                problems.add(cpath, "spec.resources.requests.storage is missing")
        mpod = ((mjob.get("spec") or {}).get("template") or {}).get("spec") or {}
        menv = k8s_container_env(mcontainer, {})
        margv = reduce_argv([k8s_expand(str(a), menv) for a in k8s_container_argv(mcontainer)], menv, "merge")
        inputs = merge_inputs(margv)
        if not inputs:
            problems.add(mpath, "the merge is given no reports")
        for item in inputs:
            if k8s_claim_at(mpod, mcontainer, item) != shard_claim:
                problems.add(
                    mpath,
                    f"the merge reads {item}, which is not on the claim {shard_claim!r} the shards write to",
                )
            elif norm_dir(item) != norm_dir(rdir) and not item.endswith(".json"):
                problems.add(mpath, f"the merge reads {item}, the shards write to {rdir}")
    # The ServiceAccount and its IRSA role.
    accounts = {a.get("metadata", {}).get("name"): (p, a) for p, a, _ in by_kind.get("ServiceAccount", [])}
    sa = pod.get("serviceAccountName")
    if not sa:
        problems.add(
            spath, "the shard pods name no serviceAccountName: they would read S3 with the node's role"
        )
    elif sa not in accounts:
        problems.add(spath, f"the ServiceAccount {sa!r} is not defined in kubernetes/")
    else:
        apath, account = accounts[sa]
        arn = ((account.get("metadata") or {}).get("annotations") or {}).get("eks.amazonaws.com/role-arn")
        if not arn:
            problems.add(apath, "no eks.amazonaws.com/role-arn annotation (IRSA)")
        elif not re.fullmatch(r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+", str(arn)):
            problems.add(apath, f"eks.amazonaws.com/role-arn {arn!r} is not an IAM role ARN")
    # Exit codes: the shard's 1 succeeds, its 2 fails and is not retried forever.
    k8s_exit_checks(spath, spec, scontainer, env0, rdir, "verify", problems)
    mspec = mjob.get("spec") or {}
    k8s_exit_checks(mpath, mspec, mcontainer, k8s_container_env(mcontainer, {}), rdir, "merge", problems)


def k8s_claim_at(pod, container, path):
    """The claim name of the volume mounted where path lies, or None."""
    volumes = {v.get("name"): v for v in pod.get("volumes") or [] if isinstance(v, dict)}
    best = None
    for mount in container.get("volumeMounts") or []:
        mp = norm_dir(str(mount.get("mountPath", "")))
        if norm_dir(path).startswith(mp) or path.startswith(mp):
            if best is None or len(mp) > len(norm_dir(best.get("mountPath", ""))):
                best = mount
    if best is None:
        return None
    volume = volumes.get(best.get("name")) or {}
    return (volume.get("persistentVolumeClaim") or {}).get("claimName")


def k8s_exit_checks(path, spec, container, env, rdir, role, problems):
    argv = [k8s_expand(str(a), env) for a in k8s_container_argv(container)]
    name = container.get("name")
    results = {}
    for rc in (0, 1, 2):
        if os.path.basename(argv[0]) == "trailproof":
            results[rc] = rc
        else:
            try:
                results[rc], _ = run_wrapper(argv, env, rdir, rc)
            except ValueError as e:
                problems.add(path, f"{role}: {e}")
                return
    if role == "verify":
        if results[1] != 0:
            problems.add(
                path,
                f"a shard that finds tampering exits 1 after writing its report, and the pod would fail with {results[1]}: map 1 to 0 (the merge decides the verdict)",
            )
        if results[0] != 0:
            problems.add(path, f"a clean shard (exit 0) would end with {results[0]}")
        if results[2] == 0:
            problems.add(
                path, "a shard that exits 2 (incomplete, or could not run) would succeed: it must fail"
            )
        else:
            action = k8s_failure_action(spec, name, results[2])
            if action == "Ignore":
                problems.add(
                    path,
                    f"podFailurePolicy ignores exit {results[2]}: a shard that cannot run would be started again forever",
                )
    else:
        for rc in (0, 1, 2):
            if results[rc] != rc:
                problems.add(
                    path,
                    f"the merge's exit {rc} comes out as {results[rc]}: its exit code is the verdict and must come through unchanged",
                )
        for rc in (1, 2):
            action = k8s_failure_action(spec, name, rc)
            if action == "Ignore":
                problems.add(
                    path, f"podFailurePolicy ignores the merge's exit {rc}: it would run again forever"
                )
            elif action == "Count" and spec.get("backoffLimit", 6) != 0:
                problems.add(
                    path,
                    f"the merge's exit {rc} is its verdict, yet it would be retried (backoffLimit {spec.get('backoffLimit', 6)}): add a FailJob rule for exit codes 1 and 2, or set backoffLimit: 0",
                )


def k8s_validate_job(path, doc, problems):
    spec = doc.get("spec") or {}
    pod = (spec.get("template") or {}).get("spec") or {}
    restart = pod.get("restartPolicy")
    if restart not in ("Never", "OnFailure"):
        problems.add(
            path, f"spec.template.spec.restartPolicy is {restart!r}: a Job's must be Never or OnFailure"
        )
    mode = spec.get("completionMode")
    if mode not in (None, "NonIndexed", "Indexed"):
        problems.add(path, f"spec.completionMode {mode!r} is neither NonIndexed nor Indexed")
    if spec.get("backoffLimitPerIndex") is not None and mode != "Indexed":
        problems.add(path, "spec.backoffLimitPerIndex needs completionMode: Indexed")
    containers = pod.get("containers") or []
    names = [c.get("name") for c in containers] + [c.get("name") for c in pod.get("initContainers") or []]
    if len(set(names)) != len(names):
        problems.add(path, "two containers share a name")
    volumes = {v.get("name") for v in pod.get("volumes") or []}
    for c in containers:
        for m in c.get("volumeMounts") or []:
            if m.get("name") not in volumes:
                problems.add(
                    path,
                    f"container {c.get('name')!r} mounts {m.get('name')!r}, which is not in spec.template.spec.volumes",
                )
    policy = spec.get("podFailurePolicy")
    if policy:
        if restart != "Never":
            problems.add(path, "spec.podFailurePolicy needs restartPolicy: Never")
        for i, rule in enumerate(policy.get("rules") or []):
            where = f"spec.podFailurePolicy.rules[{i}]"
            action = rule.get("action")
            if action not in ("FailJob", "FailIndex", "Ignore", "Count"):
                problems.add(path, f"{where}.action {action!r} is none of FailJob, FailIndex, Ignore, Count")
            if action == "FailIndex" and spec.get("backoffLimitPerIndex") is None:
                problems.add(path, f"{where}: FailIndex needs spec.backoffLimitPerIndex")
            codes, conditions = rule.get("onExitCodes"), rule.get("onPodConditions")
            if bool(codes) == bool(conditions):
                problems.add(path, f"{where}: give exactly one of onExitCodes and onPodConditions")
            if codes:
                if codes.get("operator") not in ("In", "NotIn"):
                    problems.add(
                        path,
                        f"{where}.onExitCodes.operator {codes.get('operator')!r} is neither In nor NotIn",
                    )
                values = codes.get("values") or []
                if not values or len(values) > 255:
                    problems.add(path, f"{where}.onExitCodes.values must hold 1 to 255 exit codes")
                if len(set(values)) != len(values) or values != sorted(values):
                    problems.add(path, f"{where}.onExitCodes.values must be unique and in order")
                if codes.get("operator") == "In" and 0 in values:
                    problems.add(
                        path, f"{where}.onExitCodes: 0 cannot be In (a container that exits 0 has not failed)"
                    )
                cname = codes.get("containerName")
                if cname is not None and cname not in names:
                    problems.add(
                        path, f"{where}.onExitCodes.containerName {cname!r} is no container of the pod"
                    )
            for j, cond in enumerate(conditions or []):
                if not cond.get("type"):
                    problems.add(path, f"{where}.onPodConditions[{j}].type is missing")


# --------------------------------------------------------------------------------------------
# AWS Batch


def batch_files():
    d = HERE / "batch"
    return d / "job-definition.json", d / "submit-shards.json", d / "submit-merge.json"


def batch_params(definition, submit):
    params = dict(definition.get("parameters") or {})
    params.update(submit.get("parameters") or {})
    return params


def batch_command(definition, params, path):
    command = (definition.get("containerProperties") or {}).get("command")
    if not isinstance(command, list) or not command:
        raise RecipeError(path, "containerProperties.command is missing")
    out = []
    for tok in command:
        tok = str(tok)
        if tok.startswith("Ref::"):
            name = tok[5:]
            if name not in params:
                raise RecipeError(path, f"{tok} has no value: Batch would pass the text {tok!r} itself")
            tok = str(params[name])
        out.append(tok)
    return out


def batch_env(definition, submit, extra):
    env = {}
    for item in (definition.get("containerProperties") or {}).get("environment") or []:
        env[str(item.get("name"))] = str(item.get("value", ""))
    for item in (submit.get("containerOverrides") or {}).get("environment") or []:
        env[str(item.get("name"))] = str(item.get("value", ""))
    env.update(extra)
    return env


def batch_commands(source, out_dir, shards):
    dpath, spath, mpath = batch_files()
    definition, submit, merge = load_json(dpath), load_json(spath), load_json(mpath)
    size = (submit.get("arrayProperties") or {}).get("size")
    if not isinstance(size, int) or size < 2:
        raise RecipeError(
            spath, "arrayProperties.size (2 or more) is missing: the shards are not an array job"
        )
    n = shards or size
    queue = str(submit.get("jobQueue", ""))
    params = batch_params(definition, submit)
    command = batch_command(definition, params, dpath)
    steps = []
    for i in range(n):
        env = batch_env(
            definition,
            submit,
            {
                "AWS_BATCH_JOB_ARRAY_INDEX": str(i),
                "AWS_BATCH_JOB_ARRAY_SIZE": str(n),
                "AWS_BATCH_JOB_ATTEMPT": "1",
                "AWS_BATCH_JQ_NAME": queue,
            },
        )
        try:
            argv = reduce_argv(command, env, "verify")
        except ValueError as e:
            raise RecipeError(dpath, str(e)) from None
        steps.append({"argv": set_total(argv, size, n), "env": env})
    mparams = batch_params(definition, merge)
    mcommand = batch_command(definition, mparams, dpath)
    env = batch_env(
        definition, merge, {"AWS_BATCH_JOB_ATTEMPT": "1", "AWS_BATCH_JQ_NAME": str(merge.get("jobQueue", ""))}
    )
    try:
        argv = reduce_argv(mcommand, env, "merge")
    except ValueError as e:
        raise RecipeError(dpath, str(e)) from None
    steps.append({"argv": argv, "env": env})
    return finish(steps, dpath, source, out_dir)


def botocore_enum_problems(value, shape, path, out):
    t = shape.type_name
    if t == "structure" and isinstance(value, dict):
        for k, v in value.items():
            if k in shape.members:
                botocore_enum_problems(v, shape.members[k], f"{path}.{k}" if path else k, out)
    elif t == "list" and isinstance(value, list):
        for i, v in enumerate(value):
            botocore_enum_problems(v, shape.member, f"{path}[{i}]", out)
    elif t == "map" and isinstance(value, dict):
        for k, v in value.items():
            botocore_enum_problems(v, shape.value, f"{path}.{k}", out)
    elif t == "string" and isinstance(value, str) and getattr(shape, "enum", None):
        if value not in shape.enum:
            out.append(f"{path}: {value!r} is none of {', '.join(shape.enum)}")


# Fargate's vCPU and the memory (MiB) each allows.
FARGATE = {
    "0.25": [512, 1024, 2048],
    "0.5": list(range(1024, 4097, 1024)),
    "1": list(range(2048, 8193, 1024)),
    "2": list(range(4096, 16385, 1024)),
    "4": list(range(8192, 30721, 1024)),
    "8": list(range(16384, 61441, 4096)),
    "16": list(range(32768, 122881, 8192)),
}


def batch_resources(items):
    return {str(r.get("type")): str(r.get("value")) for r in items or [] if isinstance(r, dict)}


def batch_retry_action(strategy, code):
    """RETRY or EXIT for a job whose container exited with code (evaluateOnExit, in order)."""
    if not strategy or (strategy.get("attempts") or 1) <= 1:
        return "EXIT"
    for rule in strategy.get("evaluateOnExit") or []:
        ok = True
        if "onExitCode" in rule:
            ok = fnmatch.fnmatchcase(str(code), str(rule["onExitCode"]))
        for key in ("onReason", "onStatusReason"):
            if key in rule and rule[key] != "*":
                ok = False  # the reason of an exit is not known offline: only "*" surely matches
        if ok:
            return str(rule.get("action", "")).upper()
    return "RETRY"


def batch_validate(problems):
    import botocore.session
    import botocore.validate
    from botocore.exceptions import ParamValidationError

    model = botocore.session.get_session().get_service_model("batch")
    dpath, spath, mpath = batch_files()
    loaded = {}
    for path, operation in ((dpath, "RegisterJobDefinition"), (spath, "SubmitJob"), (mpath, "SubmitJob")):
        try:
            data = load_json(path)
        except RecipeError as e:
            problems.add(path, e.message)
            continue
        if not isinstance(data, dict):
            problems.add(path, f"{operation} input is a JSON object, not {kind_of(data)}")
            continue
        shape = model.operation_model(operation).input_shape
        try:
            botocore.validate.validate_parameters(data, shape)
        except ParamValidationError as e:
            report = str(e.kwargs.get("report", e)).strip()
            problems.add(path, f"not valid {operation} input: {report}")
            continue
        found = []
        botocore_enum_problems(data, shape, "", found)
        for p in found:
            problems.add(path, f"not valid {operation} input: {p}")
        if found:
            continue
        loaded[path] = data
    if len(loaded) != 3:
        return
    definition, submit, merge = loaded[dpath], loaded[spath], loaded[mpath]
    name = definition.get("jobDefinitionName", "")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}", name):
        problems.add(dpath, f"jobDefinitionName {name!r}: up to 128 letters, digits, - and _")
    if definition.get("type") != "container":
        problems.add(
            dpath, f"type is {definition.get('type')!r}: a shard is a single container job (container)"
        )
    props = definition.get("containerProperties") or {}
    if not props:
        problems.add(dpath, "containerProperties is missing")
        return
    for path, data in ((spath, submit), (mpath, merge)):
        job = data.get("jobName", "")
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}", job):
            problems.add(path, f"jobName {job!r}: up to 128 letters, digits, - and _")
        ref = str(data.get("jobDefinition", ""))
        if not (
            ref == name
            or ref.startswith(name + ":")
            or re.search(rf":job-definition/{re.escape(name)}(:\d+)?$", ref)
        ):
            problems.add(path, f"jobDefinition {ref!r} is not {name!r}, the definition in {show(dpath)}")
        for item in (data.get("containerOverrides") or {}).get("environment") or []:
            if str(item.get("name", "")).startswith("AWS_BATCH"):
                problems.add(path, f"{item.get('name')}: the AWS_BATCH_ prefix is Batch's own")
    for item in props.get("environment") or []:
        if str(item.get("name", "")).startswith("AWS_BATCH"):
            problems.add(dpath, f"{item.get('name')}: the AWS_BATCH_ prefix is Batch's own")
    for tok in props.get("command") or []:
        if "Ref::" in tok and not tok.startswith("Ref::"):
            problems.add(
                dpath,
                f"command element {tok[:40]!r}…: Batch replaces Ref::NAME only as a whole element; pass it to the script as an argument",
            )
    # The array and the dependency.
    size = (submit.get("arrayProperties") or {}).get("size")
    if not isinstance(size, int) or not 2 <= size <= 10000:
        problems.add(
            spath, f"arrayProperties.size is {size!r}: the shards are an array job of 2 to 10,000 children"
        )
    if submit.get("dependsOn"):
        problems.add(spath, "the shards depend on nothing")
    depends = merge.get("dependsOn") or []
    if merge.get("arrayProperties"):
        problems.add(mpath, "the merge is one job, not an array")
    if len(depends) != 1:
        problems.add(
            mpath, f"dependsOn must name the shards' array job, once (it has {len(depends)} entries)"
        )
    for d in depends:
        if d.get("type"):
            problems.add(
                mpath,
                f"dependsOn type {d.get('type')}: the merge waits for the whole array job (a plain dependency, no type); N_TO_N pairs children of two arrays, SEQUENTIAL chains an array's own children",
            )
    if submit.get("jobQueue") != merge.get("jobQueue"):
        problems.add(
            mpath, f"jobQueue {merge.get('jobQueue')!r} differs from the shards' {submit.get('jobQueue')!r}"
        )
    # Fargate.
    caps = definition.get("platformCapabilities") or ["EC2"]
    resources = batch_resources(props.get("resourceRequirements"))
    if "FARGATE" in caps:
        if not props.get("executionRoleArn"):
            problems.add(
                dpath,
                "on Fargate, containerProperties.executionRoleArn is needed to pull the image and write logs",
            )
        for path, items in (
            (dpath, props.get("resourceRequirements")),
            (mpath, (merge.get("containerOverrides") or {}).get("resourceRequirements")),
        ):
            r = dict(resources)
            r.update(batch_resources(items))
            vcpu, memory = r.get("VCPU"), r.get("MEMORY")
            if vcpu is None or memory is None:
                problems.add(path, "on Fargate, resourceRequirements needs VCPU and MEMORY")
            elif vcpu not in FARGATE or not memory.isdigit() or int(memory) not in FARGATE[vcpu]:
                problems.add(path, f"Fargate has no {vcpu} vCPU with {memory} MiB (see FARGATE in check.py)")
    if not props.get("jobRoleArn"):
        problems.add(
            dpath,
            "containerProperties.jobRoleArn is missing: the shards would have no role to read the bucket with",
        )
    # The command, for the shards and for the merge.
    sparams, mparams = batch_params(definition, submit), batch_params(definition, merge)
    try:
        scommand = batch_command(definition, sparams, dpath)
        mcommand = batch_command(definition, mparams, dpath)
    except RecipeError as e:
        problems.add(e.path, e.message)
        return
    senv = batch_env(
        definition, submit, {"AWS_BATCH_JOB_ARRAY_INDEX": "0", "AWS_BATCH_JOB_ARRAY_SIZE": str(size)}
    )
    menv = batch_env(definition, merge, {})
    try:
        sargv = reduce_argv(scommand, senv, "verify")
    except ValueError as e:
        problems.add(dpath, f"with submit-shards.json's parameters: {e}")
        return
    try:
        margv = reduce_argv(mcommand, menv, "merge")
    except ValueError as e:
        problems.add(dpath, f"with submit-merge.json's parameters: {e}")
        return
    if option_value(sargv, "--shard-env") != "batch":
        problems.add(
            dpath,
            f"the shard's verify must take its shard from the array: --shard-env batch (it runs {' '.join(sargv)})",
        )
    total = option_value(sargv, "--shard-total")
    if total is not None and total != str(size):
        problems.add(dpath, f"--shard-total {total} differs from the array's size {size}")
    rdir = report_dir(sargv)
    if rdir is None:
        problems.add(dpath, "the shard's verify writes no --report json=FOLDER/ for the merge")
        return
    for item in merge_inputs(margv):
        if norm_dir(item) != norm_dir(rdir):
            problems.add(dpath, f"the merge reads {item}, the shards write to {rdir}")
    for key in set(sparams) | set(mparams):
        if key != "mode" and sparams.get(key) != mparams.get(key):
            problems.add(
                mpath,
                f"the parameter {key!r} is {mparams.get(key)!r} for the merge, {sparams.get(key)!r} for the shards",
            )
    script = scommand[2] if len(scommand) > 2 and os.path.basename(scommand[0]) in SHELLS else ""
    image = str(props.get("image", ""))
    if (
        re.search(r"(?m)^[ \t]*aws[ \t]|[;&|][ \t]*aws[ \t]", script)
        and "trailproof-aws" not in image.rsplit("/", 1)[-1]
    ):
        problems.add(
            dpath,
            f"the script calls aws, and the image {image!r} is not the Dockerfile's trailproof-aws target",
        )
    batch_exit_checks(dpath, definition, scommand, senv, mcommand, menv, rdir, sparams, problems)


def batch_exit_checks(path, definition, scommand, senv, mcommand, menv, rdir, params, problems):
    strategy = definition.get("retryStrategy")
    output = str(params.get("output", "")).rstrip("/")
    try:
        results = {rc: run_wrapper(scommand, senv, rdir, rc) for rc in (0, 1, 2)}
        broken, _ = run_wrapper(scommand, senv, rdir, 0, aws_rc=1)
        mresults = {rc: run_wrapper(mcommand, menv, rdir, rc) for rc in (0, 1, 2)}
        mbroken, _ = run_wrapper(mcommand, menv, rdir, 0, aws_rc=1)
    except ValueError as e:
        problems.add(path, str(e))
        return
    if results[0][0] != 0 or results[1][0] != 0:
        problems.add(
            path,
            f"a shard's 0 and 1 (its report written; the merge judges) must end the job SUCCEEDED, yet they end with {results[0][0]} and {results[1][0]}",
        )
    if results[2][0] == 0:
        problems.add(path, "a shard that exits 2 would end SUCCEEDED: it must fail")
    for rc in (0, 1, 2):
        code, calls = results[rc]
        uploads = [c for c in calls if c.startswith("aws s3 cp") and output and output in c.split()[-1]]
        if not uploads:
            problems.add(
                path,
                f"a shard that exits {rc} does not copy its report to {output or 'the output parameter'}/ (aws s3 cp): the merge would not find it",
            )
    if broken == 0:
        problems.add(path, "a shard whose report could not be copied to S3 (aws fails) would end SUCCEEDED")
    for rc in (0, 1, 2):
        code, calls = mresults[rc]
        if code != rc:
            problems.add(
                path,
                f"the merge's exit {rc} comes out as {code}: its exit code is the verdict and must come through unchanged",
            )
        order = [c.split()[0] + " " + c.split()[1] for c in calls]
        if (
            "aws s3" not in order
            or "trailproof merge" not in order
            or order.index("aws s3") > order.index("trailproof merge")
        ):
            problems.add(
                path, "the merge does not copy the shards' reports from S3 (aws s3 cp) before it merges"
            )
            break
    if mbroken == 0:
        problems.add(path, "a merge whose reports could not be copied (aws fails) would end SUCCEEDED")
    for rc in (1, 2):
        if batch_retry_action(strategy, rc) == "RETRY":
            problems.add(
                path,
                f'retryStrategy retries exit {rc}: the merge\'s {rc} is its verdict, not a failure to retry (add evaluateOnExit onExitCode "{rc}" EXIT)',
            )


# --------------------------------------------------------------------------------------------
# GitHub Actions

_EXPR = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


def gh_eval(expr, ctx):
    """A small part of GitHub's expressions: contexts, 'strings', numbers, a || b."""
    value = ""
    for operand in [o.strip() for o in expr.split("||")]:
        if re.fullmatch(r"'(?:[^']|'')*'", operand):
            value = operand[1:-1].replace("''", "'")
        elif re.fullmatch(r"-?\d+(\.\d+)?", operand):
            value = operand
        elif operand in ("true", "false", "null"):
            value = "" if operand == "null" else operand
        else:
            m = re.fullmatch(r"([a-z_]+)\.([A-Za-z_][\w-]*)", operand)
            if not m:
                raise ValueError(f"the expression ${{{{ {expr} }}}} is beyond what check.py evaluates")
            context, key = m.groups()
            if context in ("matrix", "env"):
                table = ctx.get(context, {})
                if key not in table:
                    raise ValueError(f"${{{{ {operand} }}}} is not defined")
                value = table[key]
            elif context in ("vars", "secrets", "inputs", "github", "needs", "steps", "runner", "job"):
                value = ""
            else:
                raise ValueError(f"unknown context {context!r}")
        if isinstance(value, bool):
            value = "true" if value else "false"
        value = str(value)
        if value:
            return value
    return value


def gh_substitute(text, ctx):
    return _EXPR.sub(lambda m: gh_eval(m.group(1), ctx), str(text))


def gh_env(workflow, job, step, ctx):
    env = {}
    for level in (workflow.get("env"), job.get("env"), step.get("env")):
        for k, v in (level or {}).items():
            env[str(k)] = gh_substitute("" if v is None else v, {**ctx, "env": env})
    return env


def gh_shell(step, job, workflow):
    shell = (
        step.get("shell")
        or ((job.get("defaults") or {}).get("run") or {}).get("shell")
        or ((workflow.get("defaults") or {}).get("run") or {}).get("shell")
    )
    if shell in (None, ""):
        return ["bash", "-e"]
    if shell == "bash":
        return ["bash", "--noprofile", "--norc", "-eo", "pipefail"]
    if shell == "sh":
        return ["sh", "-e"]
    raise ValueError(f"shell {shell!r} is beyond what check.py runs")


def gh_workflow_path():
    files = sorted((HERE / "github").glob("*.y*ml"))
    if not files:
        raise RecipeError(HERE / "github", "no workflow")
    return files[0]


def gh_load(path):
    docs = load_yaml_docs(path)
    if len(docs) != 1 or not isinstance(docs[0], dict):
        raise RecipeError(path, "a workflow is one YAML mapping")
    wf = docs[0]
    if True in wf and "on" not in wf:  # YAML 1.1: PyYAML reads the key `on` as true
        wf["on"] = wf.pop(True)
    return wf


def gh_steps_running(job, sub):
    out = []
    for i, step in enumerate(job.get("steps") or []):
        if isinstance(step, dict) and isinstance(step.get("run"), str):
            if any(
                re.match(rf"trailproof[ \t]+{sub}\b", step["run"][o:]) for o in trailproof_lines(step["run"])
            ):
                out.append((i, step))
    return out


def gh_roles(wf, path):
    """(shard job id, job, matrix key, values, step) and (merge job id, job, step)."""
    jobs = wf.get("jobs")
    if not isinstance(jobs, dict) or not jobs:
        raise RecipeError(path, "no jobs")
    shard = merge = None
    for jid, job in jobs.items():
        if not isinstance(job, dict):
            raise RecipeError(path, f"jobs.{jid} is not a mapping")
        verify = gh_steps_running(job, "verify")
        merging = gh_steps_running(job, "merge")
        if verify:
            if shard or len(verify) > 1:
                raise RecipeError(path, "more than one step runs trailproof verify")
            matrix = (job.get("strategy") or {}).get("matrix") or {}
            run = verify[0][1]["run"]
            keys = re.findall(r"\$\{\{\s*matrix\.([A-Za-z_][\w-]*)\s*\}\}", run)
            if not keys:
                raise RecipeError(
                    path,
                    f"jobs.{jid}: the verify step uses no ${{{{ matrix.… }}}}: every shard would run the same part",
                )
            key = keys[0]
            values = matrix.get(key) if isinstance(matrix, dict) else None
            if not isinstance(values, list) or not values:
                raise RecipeError(path, f"jobs.{jid}.strategy.matrix.{key} is not a list")
            shard = (jid, job, key, values, verify[0][1])
        if merging:
            if merge or len(merging) > 1:
                raise RecipeError(path, "more than one step runs trailproof merge")
            merge = (jid, job, merging[0][1])
    if shard is None:
        raise RecipeError(path, "no job runs trailproof verify")
    if merge is None:
        raise RecipeError(path, "no job runs trailproof merge")
    return shard, merge


def gh_commands(source, out_dir, shards):
    path = gh_workflow_path()
    wf = gh_load(path)
    (sid, sjob, key, values, sstep), (mid, mjob, mstep) = gh_roles(wf, path)
    total = len(values)
    n = shards or total
    steps = []
    for k in range(1, n + 1):
        ctx = {"matrix": {key: k}}
        env = gh_env(wf, sjob, sstep, ctx)
        ctx["env"] = env
        try:
            script = gh_substitute(sstep["run"], ctx)
            argv = script_invocation(script, "verify", ["bash"], env)
        except ValueError as e:
            raise RecipeError(path, f"jobs.{sid}: {e}") from None
        steps.append({"argv": set_total(argv, total, n), "env": env})
    env = gh_env(wf, mjob, mstep, {})
    try:
        script = gh_substitute(mstep["run"], {"env": env})
        argv = script_invocation(script, "merge", ["bash"], env)
    except ValueError as e:
        raise RecipeError(path, f"jobs.{mid}: {e}") from None
    steps.append({"argv": argv, "env": env})
    return finish(steps, path, source, out_dir)


def gh_uses(step, action):
    uses = str(step.get("uses", ""))
    return uses.split("@")[0] == action, uses.partition("@")[2]


def gh_validate(problems):
    try:
        path = gh_workflow_path()
        wf = gh_load(path)
    except RecipeError as e:
        problems.add(e.path, e.message)
        return
    if not wf.get("on"):
        problems.add(path, "no `on:` triggers")
    try:
        (sid, sjob, key, values, sstep), (mid, mjob, mstep) = gh_roles(wf, path)
    except RecipeError as e:
        problems.add(e.path, e.message)
        return
    jobs = wf["jobs"]
    for jid, job in jobs.items():
        if "runs-on" not in job and "uses" not in job:
            problems.add(path, f"jobs.{jid} has no runs-on")
        needs = job.get("needs") or []
        for need in [needs] if isinstance(needs, str) else needs:
            if need not in jobs:
                problems.add(path, f"jobs.{jid} needs {need!r}, which is no job")
        for i, step in enumerate(job.get("steps") or []):
            if not isinstance(step, dict) or (("run" in step) == ("uses" in step)):
                problems.add(path, f"jobs.{jid}.steps[{i}] needs exactly one of run and uses")
    # The matrix: 1..N, and the run line says /N.
    total = len(values)
    if values != list(range(1, total + 1)):
        problems.add(
            path, f"jobs.{sid}.strategy.matrix.{key} is {values}: shards are numbered 1..N (here 1..{total})"
        )
    if (sjob.get("strategy") or {}).get("fail-fast", True) is not False:
        problems.add(
            path,
            f"jobs.{sid}.strategy.fail-fast must be false: by default one shard's failure cancels the others",
        )
    ctx = {"matrix": {key: 1}}
    env = gh_env(wf, sjob, sstep, ctx)
    try:
        script = gh_substitute(sstep["run"], {**ctx, "env": env})
        argv = script_invocation(script, "verify", ["bash"], env)
    except ValueError as e:
        problems.add(path, f"jobs.{sid}: {e}")
        return
    shard = option_value(argv, "--shard")
    if not shard or not re.fullmatch(r"1/\d+", shard):
        problems.add(
            path,
            f"jobs.{sid}: the verify line must say --shard ${{{{ matrix.{key} }}}}/N (it runs {' '.join(argv)})",
        )
    elif shard != f"1/{total}":
        problems.add(path, f"jobs.{sid}: --shard K/{shard.split('/')[1]}, but the matrix has {total} shards")
    rdir = report_dir(argv)
    if rdir is None:
        problems.add(path, f"jobs.{sid}: the verify line writes no --report json=FOLDER/ for the merge")
        return
    # OIDC credentials before the verify step.
    perms = sjob.get("permissions", wf.get("permissions")) or {}
    if not (isinstance(perms, dict) and perms.get("id-token") == "write") and perms != "write-all":
        problems.add(path, f"jobs.{sid}: OIDC needs permissions: id-token: write")
    steps = sjob.get("steps") or []
    at = steps.index(sstep)
    creds = [s for s in steps[:at] if gh_uses(s, "aws-actions/configure-aws-credentials")[0]]
    if not creds:
        problems.add(
            path, f"jobs.{sid}: no aws-actions/configure-aws-credentials step before the verify step"
        )
    else:
        with_ = creds[-1].get("with") or {}
        if not with_.get("role-to-assume"):
            problems.add(path, f"jobs.{sid}: configure-aws-credentials without role-to-assume is not OIDC")
        if not with_.get("aws-region"):
            problems.add(path, f"jobs.{sid}: configure-aws-credentials needs aws-region")
    # Uploads named per shard, downloaded by the merge by pattern.
    uploads = [s for s in steps[at + 1 :] if gh_uses(s, "actions/upload-artifact")[0]]
    names = []
    if not uploads:
        problems.add(path, f"jobs.{sid}: no actions/upload-artifact step after the verify step")
    else:
        up = uploads[0]
        if gh_uses(up, "actions/upload-artifact")[1] != "v4":
            problems.add(
                path,
                f"jobs.{sid}: actions/upload-artifact@{gh_uses(up, 'actions/upload-artifact')[1]}; the recipe is for @v4",
            )
        with_ = up.get("with") or {}
        if f"matrix.{key}" not in str(with_.get("name", "")):
            problems.add(
                path,
                f"jobs.{sid}: the artifact's name must hold ${{{{ matrix.{key} }}}}: with v4, shards uploading one name collide",
            )
        if norm_dir(str(with_.get("path", ""))) != norm_dir(rdir):
            problems.add(
                path, f"jobs.{sid}: the artifact uploads {with_.get('path')!r}, the shard writes {rdir}"
            )
        names = [gh_substitute(with_.get("name", ""), {"matrix": {key: k}, "env": env}) for k in values]
        if len(set(names)) != len(names):
            problems.add(path, f"jobs.{sid}: the artifact names repeat: {names}")
    others = []
    for jid, job in jobs.items():
        for s in job.get("steps") or []:
            if (
                isinstance(s, dict)
                and gh_uses(s, "actions/upload-artifact")[0]
                and s is not (uploads[0] if uploads else None)
            ):
                others.append(str((s.get("with") or {}).get("name", "artifact")))
    # The merge job.
    needs = mjob.get("needs") or []
    needs = [needs] if isinstance(needs, str) else needs
    if sid not in needs:
        problems.add(path, f"jobs.{mid} must need {sid!r}: it would start before the shards end")
    if mjob.get("continue-on-error") or mstep.get("continue-on-error"):
        problems.add(path, f"jobs.{mid}: continue-on-error would hide the merge's verdict")
    msteps = mjob.get("steps") or []
    mat = msteps.index(mstep)
    menv = gh_env(wf, mjob, mstep, {})
    try:
        margv = script_invocation(gh_substitute(mstep["run"], {"env": menv}), "merge", ["bash"], menv)
    except ValueError as e:
        problems.add(path, f"jobs.{mid}: {e}")
        return
    inputs = merge_inputs(margv)
    downloads = [
        s
        for s in msteps[:mat]
        if gh_uses(s, "actions/download-artifact")[0] and (s.get("with") or {}).get("pattern")
    ]
    if not downloads:
        problems.add(path, f"jobs.{mid}: no actions/download-artifact step with a pattern before the merge")
    else:
        down = downloads[-1]
        with_ = down.get("with") or {}
        if gh_uses(down, "actions/download-artifact")[1] != "v4":
            problems.add(
                path,
                f"jobs.{mid}: actions/download-artifact@{gh_uses(down, 'actions/download-artifact')[1]}; the recipe is for @v4",
            )
        pattern = str(with_.get("pattern"))
        if with_.get("merge-multiple") not in (True, "true"):
            problems.add(
                path,
                f"jobs.{mid}: download-artifact needs merge-multiple: true, or each shard's report lands in a folder of its own",
            )
        missed = [n for n in names if not fnmatch.fnmatchcase(n, pattern)]
        if missed:
            problems.add(path, f"jobs.{mid}: the pattern {pattern!r} misses the artifacts {missed}")
        caught = [n for n in others if fnmatch.fnmatchcase(n, pattern)]
        if caught:
            problems.add(path, f"jobs.{mid}: the pattern {pattern!r} also downloads {caught}")
        where = norm_dir(str(with_.get("path", ".")))
        for item in inputs:
            if norm_dir(item) != where:
                problems.add(
                    path, f"jobs.{mid}: the merge reads {item}, the reports are downloaded into {where}"
                )
    if not inputs:
        problems.add(path, f"jobs.{mid}: the merge is given no reports")
    # Exit codes, by running both scripts as GitHub would.
    try:
        sshell, mshell = gh_shell(sstep, sjob, wf), gh_shell(mstep, mjob, wf)
        sscript = gh_substitute(sstep["run"], {**ctx, "env": env})
        mscript = gh_substitute(mstep["run"], {"env": menv})
        sres = {rc: run_wrapper(sshell + [sscript], env, rdir, rc, script_file=True)[0] for rc in (0, 1, 2)}
        mres = {rc: run_wrapper(mshell + [mscript], menv, rdir, rc, script_file=True)[0] for rc in (0, 1, 2)}
    except ValueError as e:
        problems.add(path, str(e))
        return
    if sres[0] != 0 or sres[1] != 0:
        problems.add(
            path,
            f"jobs.{sid}: a shard's 0 and 1 (its report written; the merge judges) must pass the step, yet they end it with {sres[0]} and {sres[1]}",
        )
    if sres[2] == 0 or sstep.get("continue-on-error") or sjob.get("continue-on-error"):
        problems.add(path, f"jobs.{sid}: a shard that exits 2 must fail its job")
    for rc in (1, 2):
        if mres[rc] == 0:
            problems.add(path, f"jobs.{mid}: the merge's exit {rc} would pass the workflow")
    if mres[0] != 0:
        problems.add(path, f"jobs.{mid}: a clean merge would fail the workflow ({mres[0]})")


# --------------------------------------------------------------------------------------------
# Dockerfile and run.sh


def dockerfile_validate(problems):
    path = HERE / "Dockerfile"
    try:
        text = path.read_text()
    except OSError as e:
        problems.add(path, str(e))
        return
    lines, cur = [], ""
    for raw in text.splitlines():
        if raw.lstrip().startswith("#") and not cur:
            continue
        if raw.rstrip().endswith("\\"):
            cur += raw.rstrip()[:-1] + " "
            continue
        cur += raw
        if cur.strip():
            lines.append(cur.strip())
        cur = ""
    stages, current = [], None
    for line in lines:
        word, _, rest = line.partition(" ")
        if word.upper() == "FROM":
            parts = rest.split()
            parts = [p for p in parts if not p.startswith("--")]
            name = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else None
            current = {"image": parts[0], "name": name, "lines": []}
            stages.append(current)
        elif current is not None:
            current["lines"].append((word.upper(), rest))
    named = {s["name"]: s for s in stages if s["name"]}
    builder = [s for s in stages if s["image"].startswith("rust:1")]
    if not builder or not any(
        w == "RUN" and "cargo build --release --locked" in r for w, r in builder[0]["lines"]
    ):
        problems.add(path, "no rust:1 stage runs cargo build --release --locked")
    for name in ("trailproof", "trailproof-aws"):
        if name not in named:
            problems.add(path, f"no stage named {name!r} (the recipes' images)")
    if stages and stages[-1]["name"] != "trailproof":
        problems.add(path, "the last stage (what `docker build` makes by default) should be trailproof")

    def chain(stage):
        seen = []
        while stage is not None and stage not in seen:
            seen.append(stage)
            stage = named.get(stage["image"])
        return seen

    def last(stage, instruction):
        for s in chain(stage):
            for w, r in reversed(s["lines"]):
                if w == instruction:
                    return r.strip()
        return None

    def base(stage):
        return chain(stage)[-1]["image"]

    if "trailproof" in named:
        if not base(named["trailproof"]).startswith("debian:"):
            problems.add(
                path, f"the trailproof image is built on {base(named['trailproof'])}, not Debian's slim image"
            )
        runs = " ".join(r for s in chain(named["trailproof"]) for w, r in s["lines"] if w == "RUN")
        if "ca-certificates" not in runs:
            problems.add(path, "the trailproof image installs no ca-certificates: TLS to AWS would fail")
        copies = " ".join(r for s in chain(named["trailproof"]) for w, r in s["lines"] if w == "COPY")
        if "/usr/local/bin/trailproof" not in copies:
            problems.add(path, "the trailproof image has no /usr/local/bin/trailproof")
        if "awscli" in copies or "aws-cli" in runs:
            problems.add(path, "the trailproof image carries the AWS CLI: keep it in trailproof-aws")
    if "trailproof-aws" in named:
        if last(named["trailproof-aws"], "ENTRYPOINT") not in ("[]", None):
            problems.add(
                path,
                "trailproof-aws must have no ENTRYPOINT (ENTRYPOINT []): AWS Batch cannot override one, and runs its command as given",
            )
        body = " ".join(r for w, r in named["trailproof-aws"]["lines"])
        if "aws" not in body:
            problems.add(path, "trailproof-aws adds no AWS CLI")
    for w, r in (builder[0]["lines"] if builder else []):
        if w == "COPY" and "--from" not in r:
            for src in r.split()[:-1]:
                if not src.startswith("--") and not (ROOT / src).exists():
                    problems.add(path, f"COPY {src}: no such path in the repository")


def runsh_validate(problems):
    for path in (HERE / "kubernetes" / "run.sh", HERE / "batch" / "run.sh"):
        try:
            text = path.read_text()
        except OSError as e:
            problems.add(path, str(e))
            continue
        done = subprocess.run(["sh", "-n", str(path)], capture_output=True, text=True)
        if done.returncode != 0:
            problems.add(path, f"sh -n: {done.stderr.strip()}")
        for sibling in sorted(path.parent.iterdir()):
            if sibling.suffix in (".yaml", ".yml", ".json") and sibling.name not in text:
                problems.add(path, f"never uses {sibling.name}")
    batch = (HERE / "batch" / "run.sh").read_text() if (HERE / "batch" / "run.sh").exists() else ""
    if batch and "--depends-on" not in batch:
        problems.add(
            HERE / "batch" / "run.sh", "the merge is submitted without --depends-on the shards' job id"
        )


# --------------------------------------------------------------------------------------------
# The command line


def validate():
    require_packages()
    problems = Problems()
    checks = (
        ("kubernetes", k8s_validate),
        ("batch", batch_validate),
        ("github", gh_validate),
        ("Dockerfile", dockerfile_validate),
        ("run.sh", runsh_validate),
    )
    for name, check in checks:
        before = len(problems.items)
        try:
            check(problems)
        except RecipeError as e:
            problems.add(e.path, e.message)
        status = "ok" if len(problems.items) == before else f"{len(problems.items) - before} problem(s)"
        print(f"{name}: {status}")
    for path, message in problems.items:
        print(f"{show(path)}: {message}", file=sys.stderr)
    return 1 if problems else 0


def commands(recipe, source, out_dir, shards):
    require_packages()
    builders = {"kubernetes": k8s_commands, "batch": batch_commands, "github": gh_commands}
    try:
        steps = builders[recipe](source, out_dir, shards)
    except RecipeError as e:
        print(f"check.py: {e}", file=sys.stderr)
        return 2
    json.dump(steps, sys.stdout, indent=2)
    print()
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Offline checks of trailproof's deploy/ recipes (see the module's doc)."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("validate", help="check every recipe against the engines' own definitions")
    c = sub.add_parser("commands", help="print the trailproof processes a recipe runs, as JSON")
    c.add_argument("--recipe", required=True, choices=["kubernetes", "batch", "github"])
    c.add_argument("--source", required=True, help="the bucket or folder, in place of the recipe's")
    c.add_argument("--out", required=True, help="the report folder, in place of the recipe's")
    c.add_argument("--shards", type=int, help="how many shards, in place of the recipe's count")
    args = parser.parse_args(argv)
    if args.command == "validate":
        return validate()
    if args.shards is not None and args.shards < 1:
        parser.error("--shards must be 1 or more")
    return commands(args.recipe, args.source, args.out, args.shards)


if __name__ == "__main__":
    sys.exit(main())
