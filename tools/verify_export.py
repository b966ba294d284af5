#!/usr/bin/env python3
"""Independent verifier of an auditring export, written from docs/FORMAT.md (section 13).

Usage:
    python3 tools/verify_export.py EXPORT_DIR [--expect-head HEX] [--after MANIFEST_OR_DIR]
                                   [--key KEY ... [--checkpoint FILE ...] [--origin ORIGIN]
                                    [--witness KEY ... --quorum K]]

Prints one JSON object:

    {"ok": bool, "events": n, "first_seq": n, "last_seq": n, "head_hash": "hex",
     "checkpoints": [{"size": n, "root": "hex", "signed_by": ["key name", ...],
                      "consistent": bool}, ...],
     "error": null | {"seq": n | null, "file": "...", "offset": n, "reason": "..."}}

`events`, `last_seq` and `head_hash` describe the records verified: on success they are the
export's; after a failure, those of the records before it. `checkpoints` lists the checkpoints
the export was compared with (section 13.6), smallest first, once checks 1 to 10 passed; empty
otherwise.

Exit status: 0 when the export verifies, 1 on an integrity failure, 2 on a usage error (bad
arguments, EXPORT_DIR not a directory or without `manifest.json`, a file that cannot be read,
an `--after` manifest that is not one, a checkpoint that cannot be used or nothing to compare
the export with).

The checks run in the order of the table of section 13.4, and a failure is reported where that
table says. Files in EXPORT_DIR other than the manifest, its data file and (given --key)
`tree.json` are ignored. Each JSONL line is parsed, written again from its values as section
13.3 says, and compared byte for byte ("one record, one line"): a line that cannot be read fails
where it starts, a line that is not in its one form at its first byte that differs.

`--expect-head HEX` checks the export against a head obtained out of band (section 13.4 check 9).
`--after MANIFEST_OR_DIR` checks that this export links to a previous one (section 13.1): the
same `log_id`, its `first_seq` the previous `last_seq + 1` and its `anchor` the previous `head`.

`--key KEY` (repeatable) ties the export to signed checkpoints (section 13.6): KEY is a trusted
verifier key, `<name>+<key id>+<base64>`, or a file holding it on its first line (a witness's
cosigner key is refused). The checkpoints are those of `--checkpoint FILE` (repeatable; FILE
holds one signed note, or a history of them, one JSON object `{"size": n, "note": "..."}` a
line, as `checkpoints.jsonl`), or, without any, the one the export's `tree.json` carries. Each
must carry a signature by a trusted key that verifies and name the log's origin: ORIGIN, by
default `auditring/` and the manifest's `log_id`. `--witness KEY` (repeatable; the witness's
cosigner key, or its Ed25519 note key taken as its cosigner key) with `--quorum K` (0: none)
requires each checkpoint to be cosigned by at least K distinct witnesses given. A checkpoint
that cannot be used so, none at all, or an export from a seq above 1 without `tree.json` is a
usage error. Given a key, `tree.json` (if there is one) must be a regular file of at most 256
KiB holding exactly the members of section 13.6 (T1) and one prefix hash per 1 bit of
`first_seq - 1` (T2), checked after check 2; after check 10, each checkpoint is compared with
the roots computed from the prefix and the records (a size from `first_seq - 1` to `last_seq`),
or, for a larger one, through `tree.json`'s consistency proof to the size of the checkpoint it
carries (T3). A failure of T3 is reported at the export's first seq, in its data file, offset
0; the checkpoints are all reported, with whether they matched.

The work is bounded whatever the files hold (sections 13.5 and 13.6): the manifest, the data
file and tree.json are opened without following a symbolic link and without blocking, and read
only if they are regular files; the manifest is read up to 64 KiB, tree.json up to 256 KiB, the
data file as a stream (one line of at most 64 MiB, or one chunk of a record of at most 64 MiB,
at a time); no regular expression runs over a whole string. Standard library only, and
tools/tlog.py (beside this file) for signed notes, checkpoints, cosignatures and Merkle proofs.
The section numbers below refer to docs/FORMAT.md.
"""

import argparse
import codecs
import decimal
import errno
import hashlib
import json
import os
import re
import stat
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import tlog  # noqa: E402

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
# Section 13.5.
MAX_MANIFEST = 64 << 10
MAX_LINE = 64 << 20
MAX_RECORD = 64 << 20
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
# Section 13.6.
TREE = "tree.json"
MAX_TREE = 256 << 10
TREE_FORMAT = "auditring-export-tree"
TREE_MEMBERS = {"format", "version", "first_seq", "last_seq", "prefix", "checkpoint", "consistency"}
# Section 15.4.
DEFAULT_ORIGIN_PREFIX = "auditring/"
# What Rust's str::trim removes (Unicode White_Space), around a key read from a file and on the
# blank lines of a checkpoint history.
WHITE_SPACE = "\t\n\x0b\x0c\r \x85\xa0\u1680" + "".join(map(chr, range(0x2000, 0x200B)))
WHITE_SPACE += "\u2028\u2029\u202f\u205f\u3000"
DETAILS_KEY = b',"details":'
DETAILS_RAW_KEY = b',"details_raw":'

ZERO_HASH = bytes(32)
CHUNK = 1 << 20

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


def _int_or_negative_zero(text):
    # "-0" is not an integer in the form a manifest holds: keep it apart (as a float).
    return -0.0 if text == "-0" else int(text)


def _pairs_no_duplicates(pairs):
    out = {}
    for k, v in pairs:
        if k in out:
            raise ValueError("duplicate member %r" % k)
        out[k] = v
    return out


def load_object(text, members, section):
    """The JSON object `text` (bytes) holds, with exactly `members`, none twice; integers are
    ints (not "-0", fractions or exponents: section 14.1), NaN and Infinity are not JSON. Raises
    ValueError."""
    try:
        m = json.loads(
            text.decode("utf-8"),
            object_pairs_hook=_pairs_no_duplicates,
            parse_int=_int_or_negative_zero,
            parse_constant=_reject_constant,
        )
    except UnicodeDecodeError:
        raise ValueError("not UTF-8")
    except RecursionError:
        raise ValueError("nested too deeply")
    # json.loads raises ValueError (JSONDecodeError is one) for the rest.
    if not isinstance(m, dict):
        raise ValueError("not a JSON object")
    if set(m) != members:
        missing = sorted(members - set(m))
        unknown = sorted(set(m) - members)
        raise ValueError(
            "members differ from section %s (missing %s, unknown %s)" % (section, missing, unknown)
        )
    return m


def parse_manifest(text):
    """Parses and checks a manifest (section 13.1); returns a dict or raises ValueError."""
    m = load_object(text, MANIFEST_MEMBERS, "13.1")
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
    for name in ("source", "exported_at"):
        try:
            m[name].encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("%s is not valid Unicode (a lone surrogate escape)" % name)
    if not 1 <= m["first_seq"] <= U64_MAX:
        raise ValueError("first_seq %d is not a seq (>= 1)" % m["first_seq"])
    if not m["first_seq"] <= m["last_seq"] <= U64_MAX:
        raise ValueError("last_seq %d is before first_seq %d" % (m["last_seq"], m["first_seq"]))
    if m["first_seq"] == 1 and m["anchor"] != "0" * 64:
        raise ValueError("the anchor of an export from seq 1 is not all zeros")
    if not 0 <= m["count"] <= U64_MAX or m["count"] != m["last_seq"] - m["first_seq"] + 1:
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
    if not 0 <= f["bytes"] <= U64_MAX:
        raise ValueError("files[0].bytes is not a size")
    if not HEX64.match(f["sha256"]):
        raise ValueError("files[0].sha256 is not 64 lowercase hex digits")
    return m


def open_regular(path):
    """Section 13.5: opens `path` for reading without following a symbolic link and
    without blocking (a FIFO); returns (file object, size), or (None, what it is instead) when it
    is not a regular file. Raises OSError (FileNotFoundError when there is nothing)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as e:
        if e.errno == errno.ELOOP:
            return None, "a symbolic link"
        if e.errno == errno.ENXIO:
            return None, "a socket"
        raise
    st = os.fstat(fd)
    if stat.S_ISREG(st.st_mode):
        return os.fdopen(fd, "rb"), st.st_size
    os.close(fd)
    if stat.S_ISDIR(st.st_mode):
        return None, "a directory"
    if stat.S_ISFIFO(st.st_mode):
        return None, "a FIFO"
    if stat.S_ISSOCK(st.st_mode):
        return None, "a socket"
    if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
        return None, "a device"
    return None, "something else"


def read_manifest_file(path):
    """(the bytes of a manifest, its size): at most MAX_MANIFEST bytes are read (a larger one is
    damaged). Raises NotAnExport when there is none or it is not a regular file, UsageError when
    it cannot be read."""
    try:
        fh, size = open_regular(path)
    except FileNotFoundError:
        raise NotAnExport(path, "not an export: %s is missing" % MANIFEST)
    except OSError as e:
        raise UsageError("cannot read %s: %s" % (path, e))
    if fh is None:
        raise NotAnExport(
            path, "not an export: cannot read %s: it is %s, not a regular file" % (MANIFEST, size)
        )
    try:
        with fh:
            text = fh.read(MAX_MANIFEST + 1)
    except OSError as e:
        raise UsageError("cannot read %s: %s" % (path, e))
    return text, max(size, len(text))


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


def walk_bundle(fh, size, path, result, last_seq):
    """Section 13.4 check 4 for records.bin; advances `result`, returns the reader."""
    r = Reader(fh)
    seq, prev = result.next_seq, result.head

    while r.pos < size:
        start = r.pos

        def fail(reason):
            return Failure(seq, path, start, reason)

        if seq > last_seq:
            raise fail("a record past the manifest's last_seq %d" % last_seq)
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
        if total > MAX_RECORD:
            raise fail(
                "a record of %d bytes, larger than an export's records may be (%d)"
                % (total, MAX_RECORD)
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
        result.confirmed(seq, prev, leaf)
    return r


# ---------------------------------------------------------------------------------------------
# Section 13.3: JSONL lines.


class BadLine(Exception):
    """A line that is not an export line; `at` is the offset in the line where it fails: 0 when
    it cannot be read at all, the first byte that differs from its one form otherwise."""

    def __init__(self, reason, at=0):
        super().__init__(reason)
        self.at = at


# JSON (RFC 8259) tokens, on bytes (the line is checked to be UTF-8 first).
JSON_WS = re.compile(rb"[ \t\n\r]*")
# A JSON string is scanned run by run (see JsonString): one regular expression for the whole
# string keeps state for every character it repeats over, gigabytes for a long string.
STRING_RUN = re.compile(rb'[^"\\\x00-\x1f]*')
STRING_ESCAPE = re.compile(rb'\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4})')


class StringMatch:
    def __init__(self, text, start, end):
        self.text, self.start, self._end = text, start, end

    def end(self):
        return self._end

    def group(self, _index=0):
        return self.text[self.start : self._end]


class JsonString:
    """A JSON string token (RFC 8259), matched like a compiled regular expression."""

    def match(self, text, at=0):
        if text[at : at + 1] != b'"':
            return None
        end = at + 1
        while True:
            end = STRING_RUN.match(text, end).end()
            c = text[end : end + 1]
            if c == b'"':
                return StringMatch(text, at, end + 1)
            if c != b"\\":
                return None
            m = STRING_ESCAPE.match(text, end)
            if m is None:
                return None
            end = m.end()

    def fullmatch(self, text):
        m = self.match(text)
        return m if m is not None and m.end() == len(text) else None


JSON_STRING = JsonString()
JSON_NUMBER = re.compile(rb"-?(?:0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")
JSON_LITERAL = re.compile(rb"true|false|null")
HASH_TEXT = re.compile(r"[0-9a-fA-F]{64}\Z")

LINE_MEMBERS = ("seq", "timestamp", "kind", "actor", "trace_id", "leaf", "chain")
DETAILS_MEMBERS = ("details", "details_raw")


def json_value_end(text, at):
    """The end of the one JSON value that starts at `at`, found without recursion (details may
    nest deeper than a recursive parser allows); raises BadLine."""
    stack = bytearray()  # one byte, "{" or "[", for each open container
    need_key = False
    while True:
        # A value (or, after "{" and ",", an object key and its colon, then a value).
        if need_key:
            m = JSON_STRING.match(text, at)
            if m is None:
                raise BadLine("expected an object key at column %d" % at)
            at = JSON_WS.match(text, m.end()).end()
            if text[at : at + 1] != b":":
                raise BadLine("expected : at column %d" % at)
            at = JSON_WS.match(text, at + 1).end()
            need_key = False
        c = text[at : at + 1]
        if c in (b"{", b"["):
            at = JSON_WS.match(text, at + 1).end()
            close = b"}" if c == b"{" else b"]"
            if text[at : at + 1] == close:
                at += 1
            else:
                stack += c
                need_key = c == b"{"
                continue
        else:
            m = (
                JSON_STRING.match(text, at)
                or JSON_NUMBER.match(text, at)
                or JSON_LITERAL.match(text, at)
            )
            if m is None:
                raise BadLine("expected a JSON value at column %d" % at)
            at = m.end()
        # A value ended: close containers, or go on to the next member or element.
        while True:
            if not stack:
                return at
            at = JSON_WS.match(text, at).end()
            c = text[at : at + 1]
            if c == b",":
                at = JSON_WS.match(text, at + 1).end()
                need_key = stack[-1:] == b"{"
                break
            if c == (b"}" if stack[-1:] == b"{" else b"]"):
                stack.pop()
                at += 1
                continue
            raise BadLine("expected , or a closing bracket at column %d" % at)


def is_json_text(text):
    """Whether `text` (bytes) is one JSON text, whitespace around it allowed."""
    at = JSON_WS.match(text, 0).end()
    try:
        at = json_value_end(text, at)
    except BadLine:
        return False
    return JSON_WS.match(text, at).end() == len(text)


def json_object_members(line):
    """The members of the one JSON object `line` holds, in order: (key, value start, value
    end); raises BadLine when the line is not one JSON object."""
    at = JSON_WS.match(line, 0).end()
    if line[at : at + 1] != b"{":
        raise BadLine("not a JSON object")
    at = JSON_WS.match(line, at + 1).end()
    members = []
    if line[at : at + 1] == b"}":
        at += 1
    else:
        while True:
            m = JSON_STRING.match(line, at)
            if m is None:
                raise BadLine("expected a member name at column %d" % at)
            key = json.loads(m.group(0).decode("utf-8"))
            at = JSON_WS.match(line, m.end()).end()
            if line[at : at + 1] != b":":
                raise BadLine("expected : at column %d" % at)
            start = JSON_WS.match(line, at + 1).end()
            end = json_value_end(line, start)
            members.append((key, start, end))
            at = JSON_WS.match(line, end).end()
            c = line[at : at + 1]
            if c == b",":
                at = JSON_WS.match(line, at + 1).end()
                continue
            if c == b"}":
                at += 1
                break
            raise BadLine("expected , or } at column %d" % at)
    if JSON_WS.match(line, at).end() != len(line):
        raise BadLine("text after the JSON object at column %d" % at)
    return members


def _int_value(token, lo, hi, what):
    """A JSON number that is an integer in [lo, hi], in whatever form it is written (the form is
    checked when the line is written again)."""
    m = JSON_NUMBER.fullmatch(token)
    if m is None:
        raise BadLine("%s is not a number" % what)
    if m.group(1) is None and m.group(2) is None:
        v = int(token)
    else:
        d = decimal.Decimal(token.decode("ascii"))
        if d.is_zero():
            v = 0
        elif d.adjusted() > 20 or d != d.to_integral_value():
            raise BadLine("%s is not an integer in range" % what)
        else:
            v = int(d)
    if not lo <= v <= hi:
        raise BadLine("%s %d is out of range" % (what, v))
    return v


def _string_value(token, what):
    """A JSON string, as UTF-8 bytes (a lone surrogate escape is not Unicode)."""
    if JSON_STRING.fullmatch(token) is None:
        raise BadLine("%s is not a JSON string" % what)
    text = json.loads(token.decode("utf-8"))
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise BadLine("the %s is not valid Unicode (a lone surrogate escape)" % what)


def _nullable_string_value(token, what):
    if token is None or token == b"null":
        return None
    return _string_value(token, what)


def _hash_value(token, what):
    text = _string_value(token, what).decode("utf-8")
    if HASH_TEXT.match(text) is None:
        raise BadLine("%s is not 64 hex digits" % what)
    return bytes.fromhex(text)


def json_string(value):
    """Section 13.3, "JSON strings": the one way to write a string (UTF-8 bytes)."""
    return json.dumps(value.decode("utf-8"), ensure_ascii=False).encode("utf-8")


def write_line(rec):
    """Section 13.3: the line an export writes for these values, line feed included."""

    def nullable(v):
        return b"null" if v is None else json_string(v)

    out = [
        b'{"seq":%d,"timestamp":%d,"kind":' % (rec["seq"], rec["timestamp"]),
        json_string(rec["kind"]),
        b',"actor":',
        nullable(rec["actor"]),
        b',"trace_id":',
        nullable(rec["trace"]),
        b',"leaf":"%s","chain":"%s"' % (rec["leaf"].hex().encode(), rec["chain"].hex().encode()),
    ]
    details = rec["details"]
    if details is not None:
        if b"\n" in details or b"\r" in details:
            out += [DETAILS_RAW_KEY, json_string(details)]
        else:
            out += [DETAILS_KEY, details]
    out.append(b"}\n")
    return b"".join(out)


def parse_line(raw):
    """A line, its line feed included, read as section 13.3 says: parsed, then written again
    from the parsed values and compared byte for byte. Returns its fields, `details` being the
    bytes of the details (None when absent); raises BadLine."""
    if not raw.endswith(b"\n"):
        raise BadLine("the last line does not end with a line feed (%d bytes)" % len(raw))
    line = raw[:-1]
    try:
        # Chunk by chunk: a decoded copy of a long line would cost up to four times its size.
        decoder = codecs.getincrementaldecoder("utf-8")("strict")
        for i in range(0, len(line), CHUNK):
            decoder.decode(line[i : i + CHUNK])
        decoder.decode(b"", True)
    except UnicodeDecodeError:
        raise BadLine("the line is not valid UTF-8")
    values = {}
    for key, start, end in json_object_members(line):
        if key not in LINE_MEMBERS and key not in DETAILS_MEMBERS:
            raise BadLine("unknown member %r" % key)
        if key in values:
            raise BadLine("member %r given twice" % key)
        values[key] = line[start:end]
    for key in ("seq", "timestamp", "kind", "leaf", "chain"):
        if key not in values:
            raise BadLine("no %r member" % key)
    rec = {
        "seq": _int_value(values["seq"], 0, U64_MAX, "seq"),
        "timestamp": _int_value(values["timestamp"], I64_MIN, I64_MAX, "timestamp"),
        "kind": _string_value(values["kind"], "kind"),
        # An absent actor or trace id member reads as null; writing the line again shows it.
        "actor": _nullable_string_value(values.get("actor"), "actor"),
        "trace": _nullable_string_value(values.get("trace_id"), "trace id"),
        "leaf": _hash_value(values["leaf"], "leaf"),
        "chain": _hash_value(values["chain"], "chain"),
    }
    raw_details = _nullable_string_value(values.get("details_raw"), "details_raw")
    if "details" in values:
        if raw_details is not None:
            raise BadLine("both details and details_raw")
        # "everything after the first occurrence of the eleven bytes ,"details": in the line, up
        # to (not including) the line's last }".
        first = line.find(DETAILS_KEY)
        last = line.rfind(b"}")
        if first < 0 or last < first + len(DETAILS_KEY):
            raise BadLine("the details member is not where section 13.3 puts it")
        details = line[first + len(DETAILS_KEY) : last]
        if not is_json_text(details):
            raise BadLine("the details are not JSON text (details is not the last member)")
    else:
        details = raw_details
    rec["details"] = details
    for what, value, limit in (
        ("kind", rec["kind"], U16_MAX),
        ("actor", rec["actor"], U16_MAX),
        ("trace id", rec["trace"], U16_MAX),
        ("details", details, U32_MAX),
    ):
        if value is not None and len(value) > limit:
            raise BadLine("the %s is %d bytes, longer than %d" % (what, len(value), limit))
    # One record, one line.
    written = write_line(rec)
    if written != raw:
        at = next(
            (i for i, (a, b) in enumerate(zip(written, raw)) if a != b),
            min(len(written), len(raw)),
        )
        raise BadLine(
            "not written the way an export writes it (section 13.3), from byte %d of the line"
            % at,
            at,
        )
    return rec


def rebuild_body(rec):
    """Section 13.3 "Rebuilding the body"; returns the body (section 6), or raises BadLine when
    it does not decode."""
    kind, actor, trace, details = rec["kind"], rec["actor"], rec["trace"], rec["details"]
    if not kind:
        raise BadLine("event kind is empty")
    flags = 0
    if actor is not None:
        flags |= FLAG_ACTOR
    if trace is not None:
        flags |= FLAG_TRACE
    if details is not None:
        flags |= FLAG_DETAILS
    fixed = struct.pack(
        "<BBHHHqI",
        BODY_VERSION,
        flags,
        len(kind),
        len(actor or b""),
        len(trace or b""),
        rec["timestamp"],
        len(details or b""),
    )
    return b"".join((fixed, kind, actor or b"", trace or b"", details or b""))


def walk_jsonl(fh, path, result, last_seq):
    """Section 13.4 check 4 for events.jsonl; advances `result`, returns the reader."""
    r = Reader(fh)
    seq, prev = result.next_seq, result.head
    while True:
        start = r.pos
        raw = fh.readline(MAX_LINE)
        if not raw:
            break
        r.pos += len(raw)
        r.hash.update(raw)

        def fail(reason, at=0):
            return Failure(seq, path, start + at, reason)

        if len(raw) == MAX_LINE and not raw.endswith(b"\n"):
            raise fail("not an export line: a line longer than %d bytes" % MAX_LINE)

        try:
            rec = parse_line(raw)
        except BadLine as e:
            raise fail("not an export line: %s" % e, e.at)
        if seq > last_seq:
            raise fail("a record past the manifest's last_seq %d" % last_seq)
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
                "chain hash mismatch: the line says %s, expected %s"
                % (rec["chain"].hex(), chain.hex())
            )
        prev = chain
        seq += 1
        result.confirmed(seq, prev, leaf)
    return r


# ---------------------------------------------------------------------------------------------
# Section 13.4.


class Result:
    def __init__(self):
        self.first_seq = 0
        self.next_seq = 1
        self.head = ZERO_HASH
        # The tree the walk grows when the export is compared with checkpoints (section 13.6),
        # and how it compared with each.
        self.tree = None
        self.checkpoints = []

    def confirmed(self, next_seq, head, leaf):
        """A record passed check 4: the walk goes on at next_seq, from head."""
        self.next_seq, self.head = next_seq, head
        if self.tree is not None:
            self.tree.push(leaf)

    def as_json(self, error):
        return {
            "ok": error is None,
            "events": self.next_seq - self.first_seq if self.first_seq else 0,
            "first_seq": self.first_seq,
            "last_seq": self.next_seq - 1 if self.first_seq else 0,
            "head_hash": self.head.hex(),
            "checkpoints": self.checkpoints,
            "error": error.as_json() if error else None,
        }


def load_previous(arg):
    """The manifest named by --after (a manifest file, or an export directory)."""
    path = os.path.join(arg, MANIFEST) if os.path.isdir(arg) else arg
    try:
        text, size = read_manifest_file(path)
    except NotAnExport as e:
        raise UsageError("--after %s: %s" % (path, e.reason))
    try:
        if size > MAX_MANIFEST:
            raise ValueError(
                "it is %d bytes, more than a manifest may be (%d)" % (size, MAX_MANIFEST)
            )
        return parse_manifest(text)
    except ValueError as e:
        raise UsageError("--after %s: not an export manifest: %s" % (path, e))


# ---------------------------------------------------------------------------------------------
# Section 13.6: tying an export to a checkpoint (section 15.4), which keys are trusted for.


def read_text(path, what):
    """The UTF-8 text of the file at path, as it is (no newline translation)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
        return data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError("reading %s %s: %s" % (what, path, e))


def key_arg(arg, witness=False):
    """A key argument (--key, --witness): the verifier key itself when it holds a '+' and names
    no file, else the first line of the file it names, trimmed. A log's key signs notes (type
    0x01): a witness's cosigner key (type 0x04) is refused. A witness's key is taken in its
    cosigner form (c2sp.org/tlog-cosignature): given by its Ed25519 note key, the same name and
    public key under type 0x04, with that type's key id."""
    text = arg
    if os.path.exists(arg) or "+" not in arg:
        text = read_text(arg, "the key").split("\n", 1)[0].strip(WHITE_SPACE)
    try:
        key = tlog.parse_verifier_key(text)
    except tlog.TlogError as e:
        raise UsageError("the key %s: %s" % (arg, e))
    if witness and key.sig_type != tlog.SIG_COSIGNATURE_V1:
        cosigner_id = tlog.key_id(key.name, tlog.SIG_COSIGNATURE_V1, key.public_key)
        key = key._replace(key_id=cosigner_id, sig_type=tlog.SIG_COSIGNATURE_V1)
    elif not witness and key.sig_type != tlog.SIG_ED25519:
        raise UsageError(
            "%s is a witness's cosigner key, not a log's key: give it as a witness" % text
        )
    return key


def checkpoint_notes(path):
    """The signed notes in a --checkpoint file: the whole file, or, when it starts with '{', a
    history of them (checkpoints.jsonl): the "note" of one JSON object a line, blank lines
    skipped."""
    text = read_text(path, "the checkpoint file")
    if not text.startswith("{"):
        return [text]
    notes = []
    history = [line for line in text.split("\n") if line.strip(WHITE_SPACE)]
    for n, line in enumerate(history, 1):
        try:
            value = json.loads(line, parse_constant=_reject_constant)
        except (ValueError, RecursionError):
            value = None
        notes.append(value.get("note") if isinstance(value, dict) else None)
        if not isinstance(notes[-1], str):
            raise UsageError(
                '%s line %d: not a checkpoint history line ({"size":..,"note":..})' % (path, n)
            )
    return notes


class Trust:
    """The keys trusted to sign checkpoints (--key) and to cosign them (--witness, with
    --quorum), the origin they must name (--origin), and the checkpoints given (--checkpoint),
    once opened: [(tlog.Checkpoint, names of the trusted keys that signed it)]."""

    def __init__(self, keys=(), witnesses=(), quorum=0, origin=None):
        self.keys, self.witnesses, self.quorum, self.origin = list(keys), witnesses, quorum, origin
        self.given = []

    def open(self, notes):
        """Section 15.4, as section 9 "Checkpoints" opens them: each note signed by a trusted key
        (whose signatures all verify), a checkpoint, and cosigned by `quorum` distinct witnesses
        given. A note that cannot be opened is a usage error."""
        opened = []
        for i, note in enumerate(notes, 1):
            try:
                checkpoint, signed_by = tlog.open_checkpoint(note, self.keys)
                # Counted by witness key given (distinct name and key id), as the crate does.
                cosigned = tlog.verify_cosignatures(note, self.witnesses, 0) if self.quorum else []
            except tlog.TlogError as e:
                raise UsageError("checkpoint %d: %s" % (i, e))
            if len(cosigned) < self.quorum:
                raise UsageError(
                    "checkpoint %d (size %d): %d of the witnesses given cosigned it, %d required"
                    % (i, checkpoint.size, len(cosigned), self.quorum)
                )
            opened.append((checkpoint, signed_by))
        return opened

    def check_origin(self, log_id, checkpoints):
        """A checkpoint of another log (by default, origin `auditring/<log id>`) is unusable."""
        origin = self.origin if self.origin is not None else DEFAULT_ORIGIN_PREFIX + log_id
        for checkpoint, _ in checkpoints:
            if checkpoint.origin != origin:
                raise UsageError(
                    "a checkpoint of size %d is for the log %r, not this one (%r)"
                    % (checkpoint.size, checkpoint.origin, origin)
                )


def _is_unicode(s):
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False  # a lone surrogate escape
    return True


def parse_tree(text):
    """tree.json as section 13.6 has it (the member rules of section 14.1), with its format and
    version; the hashes as bytes. Raises ValueError."""
    t = load_object(text, TREE_MEMBERS, "13.6")
    for name in ("format", "checkpoint"):
        if not isinstance(t[name], str) or not _is_unicode(t[name]):
            raise ValueError("%s is not a string" % name)
    for name, most in (("version", U32_MAX), ("first_seq", U64_MAX), ("last_seq", U64_MAX)):
        if not _is_int(t[name]) or not 0 <= t[name] <= most:
            raise ValueError("%s is not an integer from 0 to %d" % (name, most))
    for name in ("prefix", "consistency"):
        hashes = t[name]
        if not isinstance(hashes, list) or not all(
            isinstance(h, str) and HEX64.match(h) for h in hashes
        ):
            raise ValueError("%s is not an array of 64 lowercase hex digits each" % name)
        t[name] = [bytes.fromhex(h) for h in hashes]
    if t["format"] != TREE_FORMAT or t["version"] != 1:
        raise ValueError("format %s version %d" % (json.dumps(t["format"]), t["version"]))
    return t


def read_tree(directory, m):
    """Checks T1 and T2 of section 13.6: tree.json, read from a regular file of at most
    MAX_TREE bytes, parsed, for the manifest's range, with one prefix hash per 1 bit of
    first_seq - 1. None when there is none; raises Failure."""
    path = os.path.join(directory, TREE)

    def damaged(why):
        return Failure(None, path, 0, "the export's tree.json cannot be used: %s" % why)

    try:
        fh, size = open_regular(path)
    except FileNotFoundError:
        return None
    except OSError as e:
        raise UsageError("reading %s: %s" % (path, e))
    if fh is None:
        raise damaged("it is %s, not a regular file" % size)
    with fh:
        if size > MAX_TREE:
            raise damaged("%d bytes, more than it may have (%d)" % (size, MAX_TREE))
        try:
            text = fh.read(MAX_TREE)
        except OSError as e:
            raise UsageError("reading %s: %s" % (path, e))
    try:
        t = parse_tree(text)
    except ValueError as e:
        raise damaged(e)
    first_seq, last_seq = m["first_seq"], m["last_seq"]
    if (t["first_seq"], t["last_seq"]) != (first_seq, last_seq):
        raise damaged(
            "it is for another range than the manifest's (%d to %d)" % (first_seq, last_seq)
        )
    if len(t["prefix"]) != bin(first_seq - 1).count("1"):
        raise damaged("its prefix does not have one hash per 1 bit of %d" % (first_seq - 1))
    return t


class ExportTree:
    """The Merkle tree (section 15.1) of the records before the export, from tree.json's prefix
    (the frontier: the roots of its complete subtrees, largest first), grown by each record the
    walk confirms; keeps the root at each of `sizes` once reached."""

    def __init__(self, size, prefix, sizes):
        self.size, self.frontier = size, list(prefix)
        self.roots = dict.fromkeys(sizes)
        self.reached()

    def reached(self):
        if self.size in self.roots:
            self.roots[self.size] = self.root()

    def push(self, leaf):
        """The next record, whose leaf field is `leaf`: its tree leaf SHA-256(0x00 || leaf) merges
        with one subtree of the frontier for each trailing 1 bit of the size."""
        node, bits = tlog.leaf_hash(leaf), self.size
        while bits & 1:
            node = tlog.node_hash(self.frontier.pop(), node)
            bits >>= 1
        self.frontier.append(node)
        self.size += 1
        self.reached()

    def root(self):
        """MTH of the tree so far: the frontier folded from the right (the empty root for none)."""
        root = self.frontier[-1] if self.frontier else tlog.EMPTY_ROOT
        for left in self.frontier[-2::-1]:
            root = tlog.node_hash(left, root)
        return root


def tie(directory, m, trust):
    """Section 13.6, after check 2: (the checkpoints to compare the export with, its tree.json
    or None, the tree before its first record), or None without a trusted key. The checkpoints
    are those given, or else the one tree.json carries. Raises Failure (T1, T2), or UsageError
    when there is nothing to compare: no checkpoint, or an export from seq > 1 without
    tree.json; or for a checkpoint that cannot be used."""
    if not trust.keys:
        return None
    tree = read_tree(directory, m)
    checkpoints = trust.given
    if not checkpoints and tree is not None:
        checkpoints = trust.open([tree["checkpoint"]])
    if not checkpoints:
        raise UsageError(
            "no checkpoint to compare the export with: give one, or export it with one"
        )
    trust.check_origin(m["log_id"], checkpoints)
    if tree is None and m["first_seq"] > 1:
        raise UsageError(
            "the export starts at seq %d and carries no %s: it cannot be compared with a "
            "checkpoint (export it with one)" % (m["first_seq"], TREE)
        )
    prefix = tree["prefix"] if tree is not None else []
    sizes = [checkpoint.size for checkpoint, _ in checkpoints]
    return checkpoints, tree, ExportTree(m["first_seq"] - 1, prefix, sizes)


def carried_size(note):
    """The size of the checkpoint a tree.json carries, as the crate reads it: the note's text up
    to its last blank line (where a signed note's signatures start), parsed as a checkpoint,
    signatures unchecked (None if it is not one). A checkpoint given of that size is proved
    with tree.json's consistency proof."""
    blank = note.rfind("\n\n")
    if blank < 0:
        return None
    try:
        return tlog.parse_checkpoint(note[: blank + 1]).size
    except tlog.TlogError:
        return None


def compare(tied, first_seq, last_seq, data_path):
    """T3 of section 13.6: each checkpoint, smallest first, against the roots the walk computed
    (a size from first_seq - 1 to last_seq) or tree.json's consistency proof from last_seq (a
    larger size, that of the checkpoint tree.json carries). Returns the list the report shows
    and the first failure (or None)."""
    checkpoints, tree_file, tree = tied
    proved = carried_size(tree_file["checkpoint"]) if tree_file is not None else None
    consistency = tree_file["consistency"] if tree_file is not None else []
    checks, failure = [], None
    for checkpoint, signed_by in sorted(checkpoints, key=lambda c: c[0].size):
        n, signed = checkpoint.size, checkpoint.root_hash
        rewritten = (
            "the log's first %d records are not those a checkpoint signed (root %s): records "
            "after seq %d and up to seq %d were rewritten" % (n, signed.hex(), first_seq - 1, n)
        )
        reason = None
        if n + 1 < first_seq:
            reason = (
                "a checkpoint signed the first %d records, fewer than the %d before the export: "
                "it cannot be compared with the export's records" % (n, first_seq - 1)
            )
        elif n <= last_seq:
            if tree.roots[n] != signed:
                reason = rewritten
        elif proved != n:
            reason = (
                "a checkpoint signed the first %d records, past the export's last seq %d, and "
                "the export carries no proof to that size%s"
                % (n, last_seq, "" if proved is None else " (only to %d)" % proved)
            )
        else:
            try:
                tlog.verify_consistency(last_seq, n, tree.root(), signed, consistency)
            except tlog.ConsistencyProofError:
                reason = rewritten
        checks.append(
            {"size": n, "root": signed.hex(), "signed_by": signed_by, "consistent": not reason}
        )
        if reason and failure is None:
            failure = Failure(first_seq, data_path, 0, reason)
    return checks, failure


def verify(directory, expect_head, after, trust, result):
    """Section 13.4: the checks in the order of its table, each failure where the table says;
    given trusted keys, T1 and T2 of section 13.6 after check 2 and T3 after check 10."""
    manifest_path = os.path.join(directory, MANIFEST)

    # Check 1: the manifest exists (and is a regular file).
    text, size = read_manifest_file(manifest_path)
    # Check 2: it is the object of section 13.1.
    try:
        if size > MAX_MANIFEST:
            raise ValueError(
                "it is %d bytes, more than a manifest may be (%d)" % (size, MAX_MANIFEST)
            )
        m = parse_manifest(text)
    except ValueError as e:
        raise Failure(None, manifest_path, 0, "damaged manifest: %s" % e)
    # T1, T2: tree.json, and which checkpoints to compare with.
    tied = tie(directory, m, trust)
    if tied is not None:
        result.tree = tied[2]
    first_seq, last_seq = m["first_seq"], m["last_seq"]
    anchor, head = bytes.fromhex(m["anchor"]), bytes.fromhex(m["head"])
    entry = m["files"][0]
    data_path = os.path.join(directory, entry["name"])
    result.first_seq, result.next_seq, result.head = first_seq, first_seq, anchor

    # Check 3: the data file exists, and is a regular file.
    try:
        fh, size = open_regular(data_path)
    except FileNotFoundError:
        raise Failure(None, data_path, 0, "the data file %s is missing" % entry["name"])
    except OSError as e:
        raise UsageError("cannot open %s: %s" % (data_path, e))
    if fh is None:
        raise Failure(
            None,
            data_path,
            0,
            "the manifest lists this file, but it is %s, not a regular file" % size,
        )
    # Check 4: the records.
    with fh:
        try:
            if m["encoding"] == "bundle":
                reader = walk_bundle(fh, size, data_path, result, last_seq)
            else:
                reader = walk_jsonl(fh, data_path, result, last_seq)
            # Whatever the walk left unread still counts in the digest.
            rest = fh.read(CHUNK)
            while rest:
                reader.hash.update(rest)
                rest = fh.read(CHUNK)
        except OSError as e:
            raise UsageError("cannot read %s: %s" % (data_path, e))
    seq, prev = result.next_seq, result.head

    # Check 5: the size.
    if size != entry["bytes"]:
        raise Failure(
            None,
            data_path,
            min(size, entry["bytes"]),
            "the data file is %d bytes but the manifest says %d" % (size, entry["bytes"]),
        )
    # Check 6: the SHA-256.
    digest = reader.hash.hexdigest()
    if digest != entry["sha256"]:
        raise Failure(
            None,
            data_path,
            0,
            "the data file's SHA-256 is %s but the manifest says %s" % (digest, entry["sha256"]),
        )
    # Check 7: the records end at last_seq (a record past it failed in check 4).
    if seq - 1 != last_seq:
        raise Failure(
            seq,
            data_path,
            size,
            "the records end at seq %d but the manifest says last_seq %d (count %d)"
            % (seq - 1, last_seq, m["count"]),
        )
    # Check 8: the chain ends at the head.
    if prev != head:
        raise Failure(
            last_seq,
            data_path,
            size,
            "the records end with chain %s but the manifest's head is %s" % (prev.hex(), head.hex()),
        )
    # Check 9: a head obtained out of band.
    if expect_head is not None and head != expect_head:
        raise Failure(
            last_seq,
            data_path,
            size,
            "head mismatch: expected %s, the export's head is %s" % (expect_head.hex(), head.hex()),
        )
    # Check 10: a previous export this one continues (section 13.1, "link").
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
    # T3: the checkpoints.
    if tied is not None:
        result.checkpoints, failure = compare(tied, first_seq, last_seq, data_path)
        if failure is not None:
            raise failure


USAGE = (
    "usage: python3 tools/verify_export.py EXPORT_DIR [--expect-head HEX] "
    "[--after MANIFEST_OR_DIR] [--key KEY ... [--checkpoint FILE ...] [--origin ORIGIN] "
    "[--witness KEY ... --quorum K]]"
)


class Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError(message)


class Once(argparse.Action):
    """An option that may be given once."""

    def __call__(self, parser, namespace, values, option_string=None):
        if getattr(namespace, self.dest) is not None:
            raise UsageError("%s given twice" % option_string)
        setattr(namespace, self.dest, values)


def count(text):
    """--quorum: a number of witnesses."""
    if not text.isdigit():
        raise ValueError(text)
    return int(text)


def read_trust(args):
    """The keys, witnesses, quorum and origin given, and the checkpoints given, opened."""
    if args.checkpoint and not args.key:
        raise UsageError("--checkpoint needs --key: the key whose signatures are trusted")
    if args.witness and args.quorum is None:
        raise UsageError("--witness needs --quorum: how many of the witnesses must cosign")
    if args.quorum is not None and not args.key:
        raise UsageError("--quorum needs --key: the key whose signatures are trusted")
    notes = [note for path in args.checkpoint for note in checkpoint_notes(path)]
    trust = Trust(
        [key_arg(k) for k in args.key],
        [key_arg(w, witness=True) for w in args.witness],
        args.quorum or 0,
        args.origin,
    )
    trust.given = trust.open(notes)
    return trust


def main(argv):
    parser = Parser(
        prog="verify_export.py",
        allow_abbrev=False,
        description="Verify an auditring export (docs/FORMAT.md section 13).",
    )
    parser.add_argument("export_dir", metavar="EXPORT_DIR")
    parser.add_argument("--expect-head", metavar="HEX")
    parser.add_argument("--after", metavar="MANIFEST_OR_DIR")
    for name in ("--key", "--checkpoint", "--witness"):
        parser.add_argument(name, action="append", default=[])
    parser.add_argument("--origin", action=Once)
    parser.add_argument("--quorum", action=Once, type=count)
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
        trust = read_trust(args)
        try:
            verify(args.export_dir, expect_head, after, trust, result)
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
        print(USAGE, file=sys.stderr)
        out = result.as_json(None)
        out["ok"] = False
        out["error"] = {"seq": None, "file": None, "offset": 0, "reason": str(e)}
        print(json.dumps(out))
        return 2

    print(json.dumps(result.as_json(error)))
    return 0 if error is None else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
