"""schema_agree: checks that manifests/agent.schema.json and the C validator (run through
manifest_check) give the same verdict on every test manifest: tests/fixtures/manifests/
valid/*.json must pass both, invalid/*.json must fail both, and every agent.json under the
--also folders (examples, fixture agents) must get the same verdict from both.

Run with Debian's /usr/bin/python3 and its python3-jsonschema (4.10). Prints one line per
disagreement and the closing line "N passed, N failed"; exits 1 on any failure.
"""

import argparse
import json
import pathlib
import subprocess
import sys

import jsonschema

# Rules JSON Schema cannot express, checked by the C validator only. A fixture listed here
# must be accepted by the schema and refused by C; when the schema learns the rule the
# test fails and the entry must go.
C_ONLY = {
    "config-duplicate-name": "unique config[].name (uniqueItems compares whole items)",
}

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


class NotJansson(ValueError):
    """The text is JSON Python reads but jansson (as the C validator calls it) refuses."""


def _reject_duplicates(pairs):
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        raise NotJansson("duplicate object key")
    return dict(pairs)


def _int64(text):
    n = int(text)
    if not INT64_MIN <= n <= INT64_MAX:
        raise NotJansson("too big integer")
    return n


def _finite(text):
    x = float(text)
    if x in (float("inf"), float("-inf")):
        raise NotJansson("real number overflow")
    return x


def _constant(name):
    raise NotJansson(f"{name} is not JSON")


def _check_strings(value):
    """jansson refuses NUL characters and lone surrogates that Python's json accepts."""
    if isinstance(value, str):
        if "\0" in value:
            raise NotJansson("NUL in string")
        value.encode("utf-8")  # a lone surrogate raises UnicodeEncodeError
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_strings(key)
            _check_strings(item)
    elif isinstance(value, list):
        for item in value:
            _check_strings(item)


def load_like_jansson(path):
    """The document, or None where json_loadb(JSON_REJECT_DUPLICATES) would fail."""
    try:
        text = path.read_bytes().decode("utf-8")
        doc = json.loads(
            text,
            object_pairs_hook=_reject_duplicates,
            parse_int=_int64,
            parse_float=_finite,
            parse_constant=_constant,
        )
        _check_strings(doc)
    except (ValueError, UnicodeError):
        return None
    if not isinstance(doc, (dict, list)):
        return None  # jansson decodes only objects and arrays without JSON_DECODE_ANY
    return doc


def schema_verdict(validator, path):
    doc = load_like_jansson(path)
    if doc is None:
        return False, "not JSON as jansson reads it"
    error = jsonschema.exceptions.best_match(validator.iter_errors(doc))
    if error is None:
        return True, ""
    where = "/".join(str(p) for p in error.absolute_path) or "(root)"
    return False, f"{where}: {error.message}"


def c_verdict(check, path):
    run = subprocess.run([check, str(path)], capture_output=True, text=True, check=False)
    if run.returncode not in (0, 1):
        raise SystemExit(f"{check} {path}: exit {run.returncode}: {run.stderr.strip()}")
    return run.returncode == 0, (run.stderr or run.stdout).strip()


def manifests(args):
    """(path, expected verdict or None, C-only reason or None) for every test manifest."""
    for kind, expected in (("valid", True), ("invalid", False)):
        files = sorted((args.fixtures / kind).glob("*.json"))
        if not files:
            raise SystemExit(f"no fixtures in {args.fixtures / kind}")
        for path in files:
            yield path, expected, C_ONLY.get(path.stem) if kind == "invalid" else None
    for folder in args.also:
        for path in sorted(folder.rglob("agent.json")):
            yield path, None, None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", required=True, help="the manifest_check binary")
    parser.add_argument("--schema", required=True, type=pathlib.Path)
    parser.add_argument("--fixtures", required=True, type=pathlib.Path)
    parser.add_argument("--also", action="append", default=[], type=pathlib.Path,
                        help="folder searched for agent.json files (repeatable)")
    args = parser.parse_args()

    schema = json.loads(args.schema.read_text())
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    validator = validator_class(schema)

    passed = failed = 0
    unused_c_only = set(C_ONLY)
    for path, expected, c_only in manifests(args):
        unused_c_only.discard(path.stem if c_only else None)
        schema_ok, schema_why = schema_verdict(validator, path)
        c_ok, c_why = c_verdict(args.check, path)
        if c_only:
            want_schema, want_c = True, False
        else:
            want_c = expected if expected is not None else schema_ok
            want_schema = want_c
        problems = []
        if schema_ok != want_schema:
            problems.append(f"schema says {'valid' if schema_ok else 'invalid'} {schema_why}")
        if c_ok != want_c:
            problems.append(f"C says {'valid' if c_ok else 'invalid'} {c_why}")
        if problems:
            failed += 1
            print(f"FAIL {path}: " + "; ".join(problems))
        else:
            passed += 1
    for stem in sorted(unused_c_only):
        failed += 1
        print(f"FAIL C_ONLY names {stem}, which is not a fixture in invalid/")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
