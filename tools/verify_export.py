#!/usr/bin/env python3
"""Independent verifier of an auditring export, written from docs/FORMAT.md (section 13).

Usage:
    python3 tools/verify_export.py EXPORT_DIR [--expect-head HEX] [--after MANIFEST_OR_DIR]

Prints one JSON object:

    {"ok": bool, "events": n, "first_seq": n, "last_seq": n, "head_hash": "hex",
     "error": null | {"seq": n | null, "file": "...", "offset": n, "reason": "..."}}

`events`, `last_seq` and `head_hash` describe the records verified: on success they are the
export's; after a failure, those of the records before it.

Exit status: 0 when the export verifies, 1 on an integrity failure, 2 on a usage error (bad
arguments, EXPORT_DIR not a directory or without `manifest.json`, a file that cannot be read,
an `--after` manifest that is not one).

`--expect-head HEX` checks the export against a head obtained out of band (section 13.4 step 4).
`--after MANIFEST_OR_DIR` checks that this export links to a previous one (section 13.1): its
`first_seq` is the previous `last_seq + 1` and its `anchor` is the previous `head`.

The data file is read as a stream (one line, or one chunk of a record, at a time). Standard
library only. The section numbers below refer to docs/FORMAT.md.
"""

import argparse
import codecs
import hashlib
import json
import os
import re
import struct
import sys

# Section 5.
RECORD_MAGIC = b"AREC"
RECORD_HEADER_LEN = 80
# Section 6.
BODY_FIXED_LEN = 20
BODY_VERSION = 1
FLAG_ACTOR = 1
FLAG_TRACE = 2
FLAG_DETAILS = 4
U16_MAX = 0xFFFF
U32_MAX = 0xFFFFFFFF
U64_MAX = (1 << 64) - 1
I64_MIN = -(1 << 63)
I64_MAX = (1 << 63) - 1
# Section 13.
MANIFEST = "manifest.json"
DATA_FILES = {"jsonl": "events.jsonl", "bundle": "records.bin"}
MANIFEST_MEMBERS = {
    "format",
    "version",
    "encoding",
    "chain",
    "log_id",
    "source",
    "first_seq",
    "last_seq",
    "count",
    "anchor",
    "head",
    "exported_at",
    "exported_at_ns",
    "files",
}
FILE_MEMBERS = {"name", "bytes", "sha256"}
DETAILS_KEY = b',"details":'
DETAILS_RAW_KEY = b',"details_raw":'

ZERO_HASH = bytes(32)
CHUNK = 1 << 20

INT_RE = re.compile(rb"-?(?:0|[1-9][0-9]*)")
HASH_RE = re.compile(rb'"([0-9a-f]{64})"')
HEX64 = re.compile(r"[0-9a-f]{64}\Z")
HEX32 = re.compile(r"[0-9a-f]{32}\Z")


class Failure(Exception):
    """An integrity failure: (seq, file, offset, reason)."""

    def __init__(self, seq, file, offset, reason):
        super().__init__(reason)
        self.seq = seq
        self.file = file
        self.offset = offset
        self.reason = reason

    def as_json(self):
        return {"seq": self.seq, "file": self.file, "offset": self.offset, "reason": self.reason}


class UsageError(Exception):
    pass


class NotAnExport(Exception):
    """Exit status 2, with a JSON report naming the file."""

    def __init__(self, file, reason):
        super().__init__(reason)
        self.file = file
        self.reason = reason


def sha256(*parts):
    h = hashlib.sha256()
    for p in parts:
        h.update(p)
    return h.digest()


def record_len(body_len):
    """Section 5: header + body, rounded up to a multiple of 8."""
    return (RECORD_HEADER_LEN + body_len + 7) & ~7


def chain_hash(prev, seq, leaf):
    """Section 7: SHA-256(prev || u64_le(seq) || leaf)."""
    return sha256(prev, struct.pack("<Q", seq), leaf)


# ---------------------------------------------------------------------------------------------
# Section 13.1: the manifest.


def _is_int(v):
    return type(v) is int  # not bool, not float


def _reject_constant(name):
    raise ValueError("%s is not JSON" % name)


def _pairs_no_duplicates(pairs):
    out = {}
    for k, v in pairs:
        if k in out:
            raise ValueError("duplicate member %r" % k)
        out[k] = v
    return out


def parse_manifest(text):
    """Parses and checks a manifest (section 13.1); returns a dict or raises ValueError."""
    try:
        m = json.loads(
            text.decode("utf-8"),
            object_pairs_hook=_pairs_no_duplicates,
            parse_constant=_reject_constant,
        )
    except UnicodeDecodeError:
        raise ValueError("not UTF-8")
    except RecursionError:
        raise ValueError("nested too deeply")
    # json.loads raises ValueError (JSONDecodeError is one) for the rest.
    if not isinstance(m, dict):
        raise ValueError("not a JSON object")
    members = set(m)
    if members != MANIFEST_MEMBERS:
        missing = sorted(MANIFEST_MEMBERS - members)
        unknown = sorted(members - MANIFEST_MEMBERS)
        raise ValueError(
            "members differ from section 13.1 (missing %s, unknown %s)" % (missing, unknown)
        )
    for name in ("format", "encoding", "chain", "log_id", "source", "anchor", "head", "exported_at"):
        if not isinstance(m[name], str):
            raise ValueError("%s is not a string" % name)
    for name in ("version", "first_seq", "last_seq", "count", "exported_at_ns"):
        if not _is_int(m[name]):
            raise ValueError("%s is not an integer" % name)
    if m["format"] != "auditring-export":
        raise ValueError("format is %r, not \"auditring-export\"" % m["format"])
    if m["version"] != 1:
        raise ValueError("unsupported export version %d" % m["version"])
    if m["encoding"] not in DATA_FILES:
        raise ValueError("unknown encoding %r" % m["encoding"])
    if m["chain"] != "sha256":
        raise ValueError("unknown chain %r" % m["chain"])
    if not HEX32.match(m["log_id"]):
        raise ValueError("log_id is not 32 lowercase hex digits")
    for name in ("anchor", "head"):
        if not HEX64.match(m[name]):
            raise ValueError("%s is not 64 lowercase hex digits" % name)
    if not 1 <= m["first_seq"] <= U64_MAX:
        raise ValueError("first_seq %d is not a seq (>= 1)" % m["first_seq"])
    if not m["first_seq"] <= m["last_seq"] <= U64_MAX:
        raise ValueError("last_seq %d is before first_seq %d" % (m["last_seq"], m["first_seq"]))
    if m["count"] != m["last_seq"] - m["first_seq"] + 1:
        raise ValueError(
            "count %d is not last_seq - first_seq + 1 = %d"
            % (m["count"], m["last_seq"] - m["first_seq"] + 1)
        )
    if not I64_MIN <= m["exported_at_ns"] <= I64_MAX:
        raise ValueError("exported_at_ns is out of range")
    files = m["files"]
    if not isinstance(files, list) or len(files) != 1:
        raise ValueError("files is not an array of exactly one object")
    f = files[0]
    if not isinstance(f, dict) or set(f) != FILE_MEMBERS:
        raise ValueError("files[0] is not an object {name, bytes, sha256}")
    if not isinstance(f["name"], str) or not isinstance(f["sha256"], str) or not _is_int(f["bytes"]):
        raise ValueError("files[0] has a member of the wrong type")
    if f["name"] != DATA_FILES[m["encoding"]]:
        raise ValueError(
            "files[0].name is %r but encoding %r needs %r"
            % (f["name"], m["encoding"], DATA_FILES[m["encoding"]])
        )
    if f["bytes"] < 0:
        raise ValueError("files[0].bytes is negative")
    if not HEX64.match(f["sha256"]):
        raise ValueError("files[0].sha256 is not 64 lowercase hex digits")
    return m


def read_manifest_file(path):
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError as e:
        raise UsageError("cannot read %s: %s" % (path, e))


# ---------------------------------------------------------------------------------------------
# Section 6: the body, checked while streaming it.


class BodyCheck:
    """Feeds a body chunk by chunk; computes its SHA-256 and whether it decodes (section 6)."""

    def __init__(self, body_len):
        self.body_len = body_len
        self.hash = hashlib.sha256()
        self.fixed = b""
        self.problem = None
        self.fields = None  # [(name, remaining)] once the fixed part is known
        self.decoder = None
        if body_len < BODY_FIXED_LEN:
            self.problem = "body is %d bytes, shorter than the 20-byte envelope" % body_len

    def _start(self):
        version, flags, k, a, t, _timestamp, d = struct.unpack("<BBHHHqI", self.fixed)
        if version != BODY_VERSION:
            self.problem = "unknown envelope version %d" % version
            return
        absent_with_len = (
            (not flags & FLAG_ACTOR and a != 0)
            or (not flags & FLAG_TRACE and t != 0)
            or (not flags & FLAG_DETAILS and d != 0)
        )
        if flags & ~(FLAG_ACTOR | FLAG_TRACE | FLAG_DETAILS) or absent_with_len:
            self.problem = "invalid envelope flags 0x%02x" % flags
            return
        if k == 0:
            self.problem = "event kind is empty"
            return
        total = BODY_FIXED_LEN + k + a + t + d
        if total != self.body_len:
            self.problem = "field lengths add up to %d bytes but the body is %d" % (
                total,
                self.body_len,
            )
            return
        self.fields = [
            [name, n] for name, n in (("kind", k), ("actor", a), ("trace id", t), ("details", d))
        ]
        self._next_field()

    def _next_field(self):
        while self.fields and self.fields[0][1] == 0:
            self.fields.pop(0)
        self.decoder = codecs.getincrementaldecoder("utf-8")("strict") if self.fields else None

    def feed(self, chunk):
        self.hash.update(chunk)
        if self.problem is not None:
            return
        at = 0
        if len(self.fixed) < BODY_FIXED_LEN:
            need = BODY_FIXED_LEN - len(self.fixed)
            self.fixed += chunk[:need]
            at = min(need, len(chunk))
            if len(self.fixed) < BODY_FIXED_LEN:
                return
            self._start()
        while self.problem is None and at < len(chunk):
            if not self.fields:
                return  # cannot happen: the lengths add up
            name, remaining = self.fields[0]
            n = min(remaining, len(chunk) - at)
            last = n == remaining
            try:
                self.decoder.decode(chunk[at : at + n], final=last)
            except UnicodeDecodeError:
                self.problem = "the %s is not valid UTF-8" % name
                return
            at += n
            self.fields[0][1] -= n
            if last:
                self._next_field()

    def finish(self):
        """Returns (leaf, problem or None)."""
        return self.hash.digest(), self.problem


# ---------------------------------------------------------------------------------------------
# Section 13.2: bundles.


class Reader:
    """Sequential reads of the data file, hashing everything read (section 13.4 step 3)."""

    def __init__(self, fh):
        self.fh = fh
        self.pos = 0
        self.hash = hashlib.sha256()

    def read(self, n):
        b = self.fh.read(n)
        if len(b) != n:
            raise UsageError("unexpected end of file at %d" % (self.pos + len(b)))
        self.pos += n
        self.hash.update(b)
        return b


def walk_bundle(fh, size, path, result):
    """Section 13.4 step 2 for records.bin; advances `result`, returns the reader."""
    r = Reader(fh)
    seq, prev = result.next_seq, result.head

    while r.pos < size:
        start = r.pos

        def fail(reason):
            return Failure(seq, path, start, reason)

        # Section 9 step 5.1-5.2, the committed end being the end of the file.
        if size - start < RECORD_HEADER_LEN:
            raise fail(
                "bad record magic: %d bytes left at the end of the file, fewer than a record "
                "header" % (size - start)
            )
        header = r.read(RECORD_HEADER_LEN)
        if header[0:4] != RECORD_MAGIC:
            raise fail("bad record magic")
        body_len, stored_seq = struct.unpack_from("<IQ", header, 4)
        stored_leaf, stored_chain = header[16:48], header[48:80]
        total = record_len(body_len)
        if total > size - start:
            raise fail(
                "record runs past the end of the file (body of %d bytes, %d bytes left)"
                % (body_len, size - start)
            )
        # Section 9 step 5.3, in its order.
        if stored_seq != seq:
            raise fail("expected seq %d, found %d" % (seq, stored_seq))
        check = BodyCheck(body_len)
        left = body_len
        while left:
            chunk = r.read(min(CHUNK, left))
            check.feed(chunk)
            left -= len(chunk)
        leaf, problem = check.finish()
        padding = r.read(total - RECORD_HEADER_LEN - body_len)
        if leaf != stored_leaf:
            raise fail(
                "leaf hash mismatch: stored %s, body hashes to %s" % (stored_leaf.hex(), leaf.hex())
            )
        if padding.strip(b"\0"):
            raise fail("non-zero byte in record padding that must be zero")
        if problem is not None:
            raise fail("bad event body: " + problem)
        chain = chain_hash(prev, seq, leaf)
        if chain != stored_chain:
            raise fail(
                "chain hash mismatch: stored %s, expected %s" % (stored_chain.hex(), chain.hex())
            )
        prev = chain
        seq += 1
        result.next_seq, result.head = seq, prev
    return r


# ---------------------------------------------------------------------------------------------
# Section 13.3: JSONL lines.


class BadLine(Exception):
    pass


JSON_WS = re.compile(r"[ \t\n\r]*")
JSON_STRING = re.compile(r'"(?:[^"\\\x00-\x1f]|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*"')
JSON_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
JSON_LITERAL = re.compile(r"true|false|null")


def json_text_problem(text):
    """Whether `text` is one JSON text (RFC 8259), checked without recursion (details may nest
    deeper than a recursive parser allows); returns None, or what is wrong and where."""
    stack = []  # "{" or "[" for each open container
    at = JSON_WS.match(text, 0).end()
    need_key = False
    while True:
        # A value (or, after "{" and ",", an object key and its colon, then a value).
        if need_key:
            m = JSON_STRING.match(text, at)
            if m is None:
                return "expected an object key at character %d" % at
            at = JSON_WS.match(text, m.end()).end()
            if not text.startswith(":", at):
                return "expected : at character %d" % at
            at = JSON_WS.match(text, at + 1).end()
            need_key = False
        c = text[at : at + 1]
        if c in ("{", "["):
            at = JSON_WS.match(text, at + 1).end()
            close = "}" if c == "{" else "]"
            if text.startswith(close, at):
                at += 1
            else:
                stack.append(c)
                need_key = c == "{"
                continue
        else:
            m = JSON_STRING.match(text, at) or JSON_NUMBER.match(text, at) or JSON_LITERAL.match(
                text, at
            )
            if m is None:
                return "expected a JSON value at character %d" % at
            at = m.end()
        # A value ended: close containers, or go on to the next member or element.
        while True:
            at = JSON_WS.match(text, at).end()
            if not stack:
                return None if at == len(text) else "unexpected text at character %d" % at
            c = text[at : at + 1]
            if c == ",":
                at = JSON_WS.match(text, at + 1).end()
                need_key = stack[-1] == "{"
                break
            if c == ("}" if stack[-1] == "{" else "]"):
                stack.pop()
                at += 1
                continue
            return "expected , or a closing bracket at character %d" % at


def _scan_string(line, at):
    """The JSON string token starting at `at`; returns (decoded str, end)."""
    if at >= len(line) or line[at] != 0x22:
        raise BadLine("expected a JSON string at column %d" % at)
    i = at + 1
    n = len(line)
    while i < n:
        c = line[i]
        if c == 0x22:
            break
        if c == 0x5C:
            i += 2
            continue
        if c < 0x20:
            raise BadLine("control character in a JSON string at column %d" % i)
        i += 1
    else:
        raise BadLine("unterminated JSON string at column %d" % at)
    token = line[at : i + 1]
    try:
        text = json.loads(token.decode("utf-8"))
    except UnicodeDecodeError:
        raise BadLine("a JSON string is not valid UTF-8 at column %d" % at)
    except ValueError as e:
        raise BadLine("bad JSON string at column %d: %s" % (at, e))
    if not isinstance(text, str):
        raise BadLine("bad JSON string at column %d" % at)
    return text, i + 1


def _utf8(text, what):
    """Encodes a decoded JSON string as UTF-8 (fails on lone surrogates from \\u escapes)."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise BadLine("the %s is not valid Unicode (a lone surrogate escape)" % what)


def _expect(line, at, literal):
    if not line.startswith(literal, at):
        raise BadLine("expected %s at column %d" % (literal.decode(), at))
    return at + len(literal)


def _scan_int(line, at, lo, hi, what):
    m = INT_RE.match(line, at)
    if m is None:
        raise BadLine("%s is not a JSON integer" % what)
    v = int(m.group(0))
    if not lo <= v <= hi:
        raise BadLine("%s %d is out of range" % (what, v))
    return v, m.end()


def _scan_nullable_string(line, at, what):
    if line.startswith(b"null", at):
        return None, at + 4
    text, at = _scan_string(line, at)
    return _utf8(text, what), at


def _scan_hash(line, at, what):
    m = HASH_RE.match(line, at)
    if m is None:
        raise BadLine("%s is not 64 lowercase hex digits" % what)
    return bytes.fromhex(m.group(1).decode()), m.end()


def parse_line(line):
    """A line without its line feed, as section 13.3 lays it out; returns its fields, with
    `details` the bytes of the details (or None when absent)."""
    at = _expect(line, 0, b'{"seq":')
    seq, at = _scan_int(line, at, 0, U64_MAX, "seq")
    at = _expect(line, at, b',"timestamp":')
    timestamp, at = _scan_int(line, at, I64_MIN, I64_MAX, "timestamp")
    at = _expect(line, at, b',"kind":')
    kind, at = _scan_string(line, at)
    kind = _utf8(kind, "kind")
    at = _expect(line, at, b',"actor":')
    actor, at = _scan_nullable_string(line, at, "actor")
    at = _expect(line, at, b',"trace_id":')
    trace, at = _scan_nullable_string(line, at, "trace id")
    at = _expect(line, at, b',"leaf":')
    leaf, at = _scan_hash(line, at, "leaf")
    at = _expect(line, at, b',"chain":')
    chain, at = _scan_hash(line, at, "chain")

    if line[at:] == b"}":
        details = None
    elif line.startswith(DETAILS_KEY, at):
        # "everything after the first occurrence of the eleven bytes ,"details": in the line, up
        # to (not including) the line's last }".
        first = line.find(DETAILS_KEY)
        if first != at:
            raise BadLine(",\"details\": occurs before the details member")
        last = line.rfind(b"}")
        if last != len(line) - 1 or last < at + len(DETAILS_KEY):
            raise BadLine("the line does not end with }")
        details = line[at + len(DETAILS_KEY) : last]
        if b"\r" in details:
            raise BadLine("details holding a carriage return must be written as details_raw")
        try:
            text = details.decode("utf-8")
        except UnicodeDecodeError:
            raise BadLine("the details are not valid UTF-8")
        # The line is one JSON object: the details text must be a JSON value.
        problem = json_text_problem(text)
        if problem is not None:
            raise BadLine("the details are not JSON text: %s" % problem)
    elif line.startswith(DETAILS_RAW_KEY, at):
        text, at = _scan_string(line, at + len(DETAILS_RAW_KEY))
        if line[at:] != b"}":
            raise BadLine("unexpected bytes after details_raw at column %d" % at)
        details = _utf8(text, "details")
        if b"\n" not in details and b"\r" not in details:
            raise BadLine("details_raw used for details without a line break")
    else:
        raise BadLine("unexpected bytes after the chain member at column %d" % at)
    return {
        "seq": seq,
        "timestamp": timestamp,
        "kind": kind,
        "actor": actor,
        "trace": trace,
        "leaf": leaf,
        "chain": chain,
        "details": details,
    }


def rebuild_body(rec):
    """Section 13.3 "Rebuilding the body", checked as section 6 decodes it; returns bytes."""
    kind, actor, trace, details = rec["kind"], rec["actor"], rec["trace"], rec["details"]
    if not kind:
        raise BadLine("event kind is empty")
    if len(kind) > U16_MAX:
        raise BadLine("kind is %d bytes, more than 65535" % len(kind))
    flags = 0
    a = t = d = 0
    if actor is not None:
        flags |= FLAG_ACTOR
        a = len(actor)
        if a > U16_MAX:
            raise BadLine("actor is %d bytes, more than 65535" % a)
    if trace is not None:
        flags |= FLAG_TRACE
        t = len(trace)
        if t > U16_MAX:
            raise BadLine("trace id is %d bytes, more than 65535" % t)
    if details is not None:
        flags |= FLAG_DETAILS
        d = len(details)
        if d > U32_MAX:
            raise BadLine("details are %d bytes, more than a u32 length" % d)
    fixed = struct.pack("<BBHHHqI", BODY_VERSION, flags, len(kind), a, t, rec["timestamp"], d)
    return b"".join((fixed, kind, actor or b"", trace or b"", details or b""))


def walk_jsonl(fh, path, result):
    """Section 13.4 step 2 for events.jsonl; advances `result`, returns the reader."""
    r = Reader(fh)
    seq, prev = result.next_seq, result.head
    while True:
        start = r.pos
        raw = fh.readline()
        if not raw:
            break
        r.pos += len(raw)
        r.hash.update(raw)

        def fail(reason):
            return Failure(seq, path, start, reason)

        if not raw.endswith(b"\n"):
            raise fail("the last line does not end with a line feed (%d bytes)" % len(raw))
        try:
            rec = parse_line(raw[:-1])
        except BadLine as e:
            raise fail("not an export line: %s" % e)
        if rec["seq"] != seq:
            raise fail("expected seq %d, found %d" % (seq, rec["seq"]))
        try:
            body = rebuild_body(rec)
        except BadLine as e:
            raise fail("bad event: %s" % e)
        leaf = sha256(body)
        if leaf != rec["leaf"]:
            raise fail(
                "leaf hash mismatch: the line says %s, its event hashes to %s"
                % (rec["leaf"].hex(), leaf.hex())
            )
        chain = chain_hash(prev, seq, leaf)
        if chain != rec["chain"]:
            raise fail(
                "chain hash mismatch: the line says %s, expected %s" % (rec["chain"].hex(), chain.hex())
            )
        prev = chain
        seq += 1
        result.next_seq, result.head = seq, prev
    return r


# ---------------------------------------------------------------------------------------------
# Section 13.4.


class Result:
    def __init__(self):
        self.first_seq = 0
        self.next_seq = 1
        self.head = ZERO_HASH

    def as_json(self, error):
        return {
            "ok": error is None,
            "events": self.next_seq - self.first_seq if self.first_seq else 0,
            "first_seq": self.first_seq,
            "last_seq": self.next_seq - 1 if self.first_seq else 0,
            "head_hash": self.head.hex(),
            "error": error.as_json() if error else None,
        }


def load_previous(arg):
    """The manifest named by --after (a manifest file, or an export directory)."""
    path = os.path.join(arg, MANIFEST) if os.path.isdir(arg) else arg
    text = read_manifest_file(path)
    try:
        return parse_manifest(text)
    except ValueError as e:
        raise UsageError("--after %s: not an export manifest: %s" % (path, e))


def verify(directory, expect_head, after, result):
    manifest_path = os.path.join(directory, MANIFEST)

    # Step 1: the manifest.
    if not os.path.isfile(manifest_path):
        raise NotAnExport(manifest_path, "not an export: %s is missing" % MANIFEST)
    text = read_manifest_file(manifest_path)
    try:
        m = parse_manifest(text)
    except ValueError as e:
        raise Failure(None, manifest_path, 0, "damaged manifest: %s" % e)
    first_seq, last_seq = m["first_seq"], m["last_seq"]
    anchor, head = bytes.fromhex(m["anchor"]), bytes.fromhex(m["head"])
    entry = m["files"][0]
    data_path = os.path.join(directory, entry["name"])
    result.first_seq, result.next_seq, result.head = first_seq, first_seq, anchor

    # Step 2: the records.
    try:
        fh = open(data_path, "rb")
    except FileNotFoundError:
        raise Failure(None, data_path, 0, "the data file %s is missing" % entry["name"])
    except OSError as e:
        raise UsageError("cannot open %s: %s" % (data_path, e))
    with fh:
        size = os.fstat(fh.fileno()).st_size
        try:
            if m["encoding"] == "bundle":
                reader = walk_bundle(fh, size, data_path, result)
            else:
                reader = walk_jsonl(fh, data_path, result)
        except OSError as e:
            raise UsageError("cannot read %s: %s" % (data_path, e))
    seq, prev = result.next_seq, result.head

    # Step 3: size, SHA-256, count, last seq, head.
    if reader.pos != entry["bytes"]:
        raise Failure(
            None,
            data_path,
            min(reader.pos, entry["bytes"]),
            "the data file is %d bytes but the manifest says %d" % (reader.pos, entry["bytes"]),
        )
    digest = reader.hash.hexdigest()
    if digest != entry["sha256"]:
        raise Failure(
            None,
            data_path,
            0,
            "the data file's SHA-256 is %s but the manifest says %s" % (digest, entry["sha256"]),
        )
    if seq - 1 != last_seq:
        raise Failure(
            seq if seq <= last_seq else last_seq + 1,
            data_path,
            reader.pos,
            "the records end at seq %d but the manifest says last_seq %d (count %d)"
            % (seq - 1, last_seq, m["count"]),
        )
    if prev != head:
        raise Failure(
            last_seq,
            manifest_path,
            0,
            "the records end with chain %s but the manifest's head is %s" % (prev.hex(), head.hex()),
        )

    # Step 4: heads obtained out of band.
    if expect_head is not None and head != expect_head:
        raise Failure(
            last_seq,
            manifest_path,
            0,
            "head mismatch: expected %s, the export's head is %s" % (expect_head.hex(), head.hex()),
        )
    if after is not None:
        if after["log_id"] != m["log_id"]:
            raise Failure(
                first_seq,
                manifest_path,
                0,
                "does not link: the previous export is of another log (log_id %s, this one %s)"
                % (after["log_id"], m["log_id"]),
            )
        if first_seq != after["last_seq"] + 1:
            raise Failure(
                first_seq,
                manifest_path,
                0,
                "does not link: first_seq %d is not the previous export's last_seq + 1 = %d"
                % (first_seq, after["last_seq"] + 1),
            )
        if m["anchor"] != after["head"]:
            raise Failure(
                first_seq,
                manifest_path,
                0,
                "does not link: the anchor %s is not the previous export's head %s"
                % (m["anchor"], after["head"]),
            )


class Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(message)


def main(argv):
    parser = Parser(
        prog="verify_export.py",
        description="Verify an auditring export (docs/FORMAT.md section 13).",
    )
    parser.add_argument("export_dir", metavar="EXPORT_DIR")
    parser.add_argument("--expect-head", metavar="HEX")
    parser.add_argument("--after", metavar="MANIFEST_OR_DIR")
    result = Result()
    error = None
    try:
        args = parser.parse_args(argv[1:])
        expect_head = None
        if args.expect_head is not None:
            try:
                expect_head = bytes.fromhex(args.expect_head)
            except ValueError:
                expect_head = b""
            if len(expect_head) != 32:
                raise UsageError("--expect-head needs 64 hex digits")
        after = load_previous(args.after) if args.after is not None else None
        if not os.path.isdir(args.export_dir):
            raise UsageError("%s is not a directory" % args.export_dir)
        try:
            verify(args.export_dir, expect_head, after, result)
        except Failure as e:
            error = e
    except NotAnExport as e:
        print("verify_export.py: %s" % e.reason, file=sys.stderr)
        out = result.as_json(None)
        out["ok"] = False
        out["error"] = {"seq": None, "file": e.file, "offset": 0, "reason": e.reason}
        print(json.dumps(out))
        return 2
    except UsageError as e:
        print("verify_export.py: %s" % e, file=sys.stderr)
        print(
            "usage: python3 tools/verify_export.py EXPORT_DIR [--expect-head HEX] "
            "[--after MANIFEST_OR_DIR]",
            file=sys.stderr,
        )
        out = result.as_json(None)
        out["ok"] = False
        out["error"] = {"seq": None, "file": None, "offset": 0, "reason": str(e)}
        print(json.dumps(out))
        return 2

    print(json.dumps(result.as_json(error)))
    return 0 if error is None else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
