#!/usr/bin/env python3
"""CLI fuzzer (issue 14): runs `iol generate|bench|tokenize|report|model` with flags drawn from
their own option tables (parsed from --help, so new flags are fuzzed without editing this file),
given hostile values (negative, zero, huge, NaN, overflowing, wrong types, missing companions) and
corrupted model/tokenizer/scenario/results files. Every run must

  * end within a time limit (a bench still running gets SIGTERM and must then finish its record
    as interrupted and exit within a grace period; anything else still running is a hang),
  * end by exit 0, or by a non-zero exit with one clear line "iol: error: ..." on stderr (no
    signal, no sanitizer report, no raw library exception),
  * leave every existing results file intact: its old bytes are a prefix of its new bytes and
    every line is still a JSON object (bench may append whole records, nothing else may change it).

Seeded and reproducible: case N of seed S is always the same command (its generator is seeded
with "S:N"), whatever ran before it. A failure prints the command and how to rerun only it.
Usage: cli_fuzz.py --iol BINARY --work DIR [--seconds 120] [--seed 14] [--case N]
"""
import argparse
import hashlib
import json
import os
import random
import re
import shlex
import shutil
import signal
import stat
import struct
import subprocess
import sys
import time

RUN_TIMEOUT_S = 30      # a run (bench: until SIGTERM)
GRACE_S = 20            # a bench after SIGTERM
ALLOWED_EXIT = {0, 1, 2, 128 + signal.SIGINT, 128 + signal.SIGTERM}
BAD_STDERR = re.compile(r"terminate called|what\(\)|Sanitizer|runtime error:|std::bad_alloc|basic_string|"
                        r"\[json\.exception|nlohmann|Segmentation|Aborted|core dumped|Assertion")

INFO_LINE = re.compile(r"^(iol: warning: |iol (bench|generate|report|model create): |\S+ \S+: \d+/\d+ requests, )")

SUBCOMMANDS = ["generate", "bench", "tokenize", "report", "model create", "model info"]


def sh(args):
    return " ".join(shlex.quote(a) for a in args)


def option_table(iol, sub):
    """(flag, takes_value) for each option in `iol SUB --help` (CLI11's format)."""
    out = subprocess.run([iol] + sub.split() + ["--help"], capture_output=True, text=True, timeout=30).stdout
    table = []
    for line in out.splitlines():
        m = re.match(r"^\s+(?:-\w,\s*)?(--[\w-]+)(\s+(\S+))?", line)
        if not m or m.group(1) in ("--help", "--version"):
            continue
        token = m.group(3) or ""
        takes_value = bool(re.match(r"^(TEXT|INT|UINT|FLOAT|NUMBER|[A-Z]+(:|\b)|\[)", token))
        table.append((m.group(1), takes_value))
    if not table:
        raise SystemExit(f"cli_fuzz: could not read the options of 'iol {sub} --help'")
    return table


def write(path, data, mode="w"):
    with open(path, mode) as f:
        f.write(data)


class Fixtures:
    """Valid and corrupted inputs, made once per work directory."""

    def __init__(self, iol, work):
        self.work = work
        self.iol = iol
        os.makedirs(work, exist_ok=True)
        self.model = os.path.join(work, "model")
        if not os.path.isfile(os.path.join(self.model, "model.safetensors")):
            shutil.rmtree(self.model, ignore_errors=True)
            subprocess.run([iol, "model", "create", "--preset", "tiny", "--dtype", "f32", "--out", self.model],
                           check=True, capture_output=True, timeout=120)
        self.corrupt_models = self._corrupt_models()
        self.scenarios = self._scenarios()
        self.json_files = self._json_files()
        self.fifo = os.path.join(work, "fifo")
        if not os.path.exists(self.fifo):
            os.mkfifo(self.fifo)
        self.directory = os.path.join(work, "a_directory")
        os.makedirs(self.directory, exist_ok=True)

    def _corrupt_models(self):
        base = self.model
        made = []

        def variant(name, edit):
            d = os.path.join(self.work, "model_" + name)
            if not os.path.isdir(d):
                shutil.copytree(base, d)
                edit(d)
            made.append(d)

        def truncate(file, size):
            return lambda d: os.truncate(os.path.join(d, file), size)

        def flip(file, offset):
            def edit(d):
                with open(os.path.join(d, file), "r+b") as f:
                    f.seek(offset)
                    b = f.read(1)
                    f.seek(offset)
                    f.write(bytes([(b[0] if b else 0) ^ 0xff]))
            return edit

        def replace_json(file, mutate):
            def edit(d):
                p = os.path.join(d, file)
                with open(p) as f:
                    j = json.load(f)
                mutate(j)
                write(p, json.dumps(j))
            return edit

        def fifo(file):
            def edit(d):
                os.remove(os.path.join(d, file))
                os.mkfifo(os.path.join(d, file))
            return edit

        def header_len(value):
            def edit(d):
                with open(os.path.join(d, "model.safetensors"), "r+b") as f:
                    f.write(struct.pack("<Q", value))
            return edit

        def nan_weights(d):
            p = os.path.join(d, "model.safetensors")
            with open(p, "r+b") as f:
                n = struct.unpack("<Q", f.read(8))[0]
                header = json.loads(f.read(n))
                begin, end = header["model.norm.weight"]["data_offsets"]
                f.seek(8 + n + begin)
                f.write(struct.pack("<f", float("nan")) * ((end - begin) // 4))

        variant("config_truncated", truncate("config.json", 40))
        variant("config_empty", truncate("config.json", 0))
        variant("safetensors_truncated", truncate("model.safetensors", 4096))
        variant("safetensors_flipped", flip("model.safetensors", 20))
        variant("safetensors_header_huge", header_len(2 ** 63))
        variant("safetensors_header_odd", header_len(3))
        variant("tokenizer_truncated", truncate("tokenizer.json", 100))
        variant("config_fifo", fifo("config.json"))
        variant("safetensors_fifo", fifo("model.safetensors"))
        variant("nan_weights", nan_weights)
        for key, value in [("hidden_size", -1), ("hidden_size", 2 ** 62), ("vocab_size", 0), ("num_hidden_layers", 1e30),
                           ("num_key_value_heads", 3), ("max_position_embeddings", "many"), ("rope_theta", float("inf")),
                           ("head_dim", 2 ** 40), ("eos_token_id", [2 ** 40])]:
            variant(f"config_{key}_{abs(hash(str(value))) % 1000}", replace_json("config.json", lambda j, k=key, v=value: j.__setitem__(k, v)))
        variant("tokenizer_no_special", replace_json("tokenizer.json", lambda j: j.__setitem__(
            "post_processor", {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "X"}}], "special_tokens": {}})))
        variant("tokenizer_deep", lambda d: write(os.path.join(d, "tokenizer.json"), "[" * 40000 + "]" * 40000))
        return made

    def _scenarios(self):
        texts = {
            "ok": "num_requests: 2\ninput_len: 4\noutput_len: 2\n",
            "nan": "input_len: {dist: fixed, value: .nan}\n",
            "huge": "output_len: {dist: uniform, low: 1, high: 1e30}\nnum_requests: 2\n",
            "negative": "num_requests: -4\n",
            "deep": "name: " + "[" * 20000 + "]" * 20000 + "\n",
            "types": "concurrency: {a: b}\narrival: closed\n",
            "unknown": "bogus: 1\n",
            "binary": "\x00\x01\x02\xff",
            "closed_without": "arrival: closed\n",
            "offline_with_rate": "arrival: offline\nrequest_rate: 3\n",
            "tiny_rate": "arrival: poisson\nrequest_rate: 1e-9\nnum_requests: 2\ninput_len: 4\noutput_len: 2\n",
            "alias": "a: &x [1, 2]\nconcurrency: *x\narrival: closed\nnum_requests: 2\ninput_len: 4\noutput_len: 2\n",
        }
        paths = []
        for name, text in texts.items():
            p = os.path.join(self.work, f"scenario_{name}.yaml")
            write(p, text.encode("latin-1"), "wb")
            paths.append(p)
        return paths

    def _json_files(self):
        files = {
            "messages_ok": '[{"role": "user", "content": "hi"}]',
            "messages_deep": '[{"role": "user", "content": ' + "[" * 30000 + "]" * 30000 + "}]",
            "messages_types": '[{"role": 5, "content": {"a": []}}]',
            "not_json": "{{{{",
            "dataset_jsonl": '{"prompt": "hello", "output_len": 3}\n{"prompt": 5}\n',
            "dataset_sharegpt": '[{"conversations": [{"value": "hi"}, {"value": "there"}]}]',
            "prompts_ids": "256,1,2\n256,x\n",
            "prompts_huge": "256," + ",".join(["99999999999"] * 3) + "\n",
            "template": "{% for m in messages %}{{ m.content }}{% endfor %}",
            "template_bad": "{% for %}{{",
        }
        paths = {}
        for name, text in files.items():
            p = os.path.join(self.work, name + (".txt" if name.startswith("prompts") else ".jsonl" if "dataset" in name else ".json"))
            write(p, text)
            paths[name] = p
        return paths


class Results:
    """Results files whose contents must survive every run."""

    def __init__(self, iol, work):
        self.dir = os.path.join(work, "results")
        os.makedirs(self.dir, exist_ok=True)
        self.good = os.path.join(self.dir, "R.jsonl")
        self.partial = os.path.join(self.dir, "partial.jsonl")
        self.named_md = os.path.join(self.dir, "report.md")
        if not os.path.isfile(self.good):
            subprocess.run([iol, "bench", "--preset", "tiny", "--quiet", "--num-requests", "2", "--input-len", "4",
                            "--output-len", "2", "--out", self.good], check=True, capture_output=True, timeout=120)
        with open(self.good, "rb") as f:
            record = f.read().splitlines()[0]
        write(self.partial, record + b"\n" + record[: len(record) // 2], "wb")
        write(self.named_md, record + b"\n", "wb")
        self.files = [self.good, self.partial, self.named_md]
        self.before = {p: open(p, "rb").read() for p in self.files}

    def check(self):
        """'' when every results file is intact (old bytes a prefix, whole JSON lines), else why not."""
        for p in self.files:
            if not os.path.isfile(p):
                return f"{p} was removed or replaced by a non-file"
            now = open(p, "rb").read()
            old = self.before[p]
            if not now.startswith(old):
                return f"{p} was rewritten (its previous {len(old)} bytes are not a prefix of the new {len(now)})"
            added = now[len(old):]
            if added:
                if p == self.partial:
                    return f"{p}: records were appended onto a partial last line"
                if not added.endswith(b"\n") or not old.endswith(b"\n"):
                    return f"{p}: an append left a partial line"
                for line in added.splitlines():
                    try:
                        if not isinstance(json.loads(line), dict):
                            raise ValueError
                    except ValueError:
                        return f"{p}: an appended line is not a JSON object: {line[:80]!r}"
            self.before[p] = now
        return ""


VALUES = ["-1", "0", "1", "2", "3", "-5", "7", "16", "100000", "4503599627370496", "9223372036854775807",
          "9223372036854775808", "-9223372036854775809", "99999999999999999999", "nan", "NaN", "inf", "-inf", "1e30",
          "1e-9", "0.5", "-0.0", "1.5", "abc", "", " ", "0x10", "1,2", "-1,4", "2,,3", "x" * 300, "[[[", "{}",
          '{"a": 1}', "auto", "cpu", "cuda", "paged", "contiguous", "static", "poisson", "closed", "offline",
          "sharegpt", "jsonl", "text", "random", "bf16", "f32", "ttft_ms=1", "ttft_ms=-1,tpot_ms=nan", "\u00e9\u00e8",
          "%s%n", "/nonexistent/x"]


class Case:
    def __init__(self, fixtures, results, tables, seed, index):
        self.rng = random.Random(f"{seed}:{index}")
        self.f, self.r, self.tables = fixtures, results, tables
        self.index = index

    def path_value(self):
        f, r = self.f, self.r
        pool = ([f.fifo, f.directory, "/nonexistent/file", "/proc/self/mem", "/dev/zero"] + f.scenarios +
                list(f.json_files.values()) + r.files + f.corrupt_models + [f.model])
        return self.rng.choice(pool)

    def value(self):
        return self.path_value() if self.rng.random() < 0.25 else self.rng.choice(VALUES)

    def command(self):
        rng, f, r = self.rng, self.f, self.r
        sub = rng.choice(SUBCOMMANDS)
        model = rng.choice([f.model] * 4 + f.corrupt_models)
        out = rng.choice(r.files + [os.path.join(r.dir, f"new_{self.index % 7}.jsonl")])
        base = {
            "generate": ["--model", model, "--prompt-ids", "256,1,2", "--max-tokens", "3"] if rng.random() < 0.7
            else ["--preset", "tiny", "--prompt", "hi", "--max-tokens", "3"],
            "bench": ["--model", model, "--quiet", "--num-requests", "2", "--input-len", "4", "--output-len", "2",
                      "--out", out],
            "tokenize": ["--model", model, "--text", "hello"],
            "report": [rng.choice(r.files + f.scenarios + [f.fifo, f.directory, f.json_files["not_json"]]),
                       "--out", rng.choice(r.files + [os.path.join(r.dir, "fuzz.md")])],
            # Never the fixtures' own model: later cases must see the same inputs whatever ran before.
            "model create": ["--preset", "tiny", "--out", rng.choice([os.path.join(f.work, "created")] * 3 + r.files)],
            "model info": ["--model", model],
        }[sub]
        args = list(base)
        # Drop a companion now and then (a flag without what it needs, or a required one).
        if rng.random() < 0.15 and len(args) > 2:
            i = rng.randrange(0, len(args) - 1)
            del args[i:i + (2 if args[i].startswith("--") and i + 1 < len(args) and not args[i + 1].startswith("--") else 1)]
        for _ in range(rng.choice([1, 1, 2, 2, 3, 4])):
            flag, takes_value = rng.choice(self.tables[sub])
            if takes_value:
                args += [flag, self.value()]
            else:
                args += [flag] + ([self.value()] if rng.random() < 0.05 else [])
        if rng.random() < 0.05:
            args.append(rng.choice(["--bogus", "-x", "positional"]))
        return sub.split() + args


def run_case(iol, case):
    args = case.command()
    command = [iol] + args
    started = time.monotonic()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                            cwd=case.f.work, start_new_session=True)
    terminated = False
    try:
        _, err = proc.communicate(timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        if args[0] != "bench":
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            return command, f"did not end within {RUN_TIMEOUT_S} s (a hang)"
        terminated = True
        proc.send_signal(signal.SIGTERM)  # a long but valid bench: it must record and exit
        try:
            _, err = proc.communicate(timeout=GRACE_S)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            return command, f"bench did not end within {GRACE_S} s of SIGTERM"
    err = err.decode("utf-8", "replace")
    code = proc.returncode
    if code < 0:
        return command, f"killed by signal {-code} ({signal.Signals(-code).name}); stderr: {err[-500:]}"
    if code not in ALLOWED_EXIT:
        return command, f"exit code {code}; stderr: {err[-500:]}"
    if BAD_STDERR.search(err):
        return command, f"crash or raw exception on stderr: {err[-800:]}"
    # Informational lines (summaries, warnings, progress) are fine; what remains must be the error.
    lines = [l for l in err.splitlines() if not INFO_LINE.match(l)]
    if code != 0:
        errors = [l for l in lines if l.startswith("iol: error: ")]
        if len(errors) != 1 or len(lines) != 1:
            return command, f"exit {code} without exactly one 'iol: error:' line: {err[-800:]!r}"
        if len(errors[0].split()) < 4:
            return command, f"error message too terse: {errors[0]!r}"
        if terminated and code != 128 + signal.SIGTERM:
            return command, f"after SIGTERM, exit {code} instead of {128 + signal.SIGTERM}"
    damage = case.r.check()
    if damage:
        return command, damage
    return command, None


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--iol", required=True)
    p.add_argument("--work", required=True)
    p.add_argument("--seconds", type=float, default=120)
    p.add_argument("--seed", type=int, default=int(os.environ.get("IOL_CLI_FUZZ_SEED", "14")))
    p.add_argument("--case", type=int, help="run only this case")
    a = p.parse_args()
    iol = os.path.abspath(a.iol)
    work = os.path.abspath(a.work)
    if a.case is None:
        shutil.rmtree(work, ignore_errors=True)  # the same fixtures every run
    fixtures = Fixtures(iol, work)
    results = Results(iol, work)
    tables = {sub: option_table(iol, sub) for sub in SUBCOMMANDS}
    deadline = time.monotonic() + a.seconds
    cases = [a.case] if a.case is not None else range(10 ** 9)
    failures = ran = 0
    for index in cases:
        if a.case is None and time.monotonic() > deadline:
            break
        command, problem = run_case(iol, Case(fixtures, results, tables, a.seed, index))
        ran += 1
        if problem:
            failures += 1
            print(f"cli_fuzz: FAIL case {index} (seed {a.seed}): {problem}\n  command: {sh(command)}\n"
                  f"  rerun: {sh([sys.executable, __file__, '--iol', a.iol, '--work', a.work, '--seed', str(a.seed), '--case', str(index)])}",
                  flush=True)
            if failures >= 20:
                break
    print(f"cli_fuzz: {ran} cases, {failures} failures (seed {a.seed}, {a.seconds:.0f} s budget)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
