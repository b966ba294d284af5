#!/usr/bin/env python3
"""Independent verifier of an auditring log, written from docs/FORMAT.md.

Usage:
    python3 tools/verify_log.py DIR [--receipt SEQ:HEX ...]
                                    [--checkpoint FILE ... --key KEY ...
                                     [--witness KEY ... --quorum K] [--origin ORIGIN]]
                                    [--seal-key FILE [--expect-epoch N]]

Prints one JSON object:

    {"ok": bool, "events": n, "first_seq": n, "last_seq": n, "head_hash": "hex",
     "error": null | {"seq": n | null, "file": "...", "offset": n, "reason": "..."},
     "segments": n, "uncommitted": n, "torn_tail": null | {...}, "notes": [...],
     "foreign_files": [...], "tree_root": null | "hex",
     "checkpoints": [{"size": n, "root": "hex", "signed_by": ["key name", ...],
                      "consistent": bool}, ...],
     "seals": null | {"seals": n, "first_epoch": n | null, "last_epoch": n | null,
                      "sealed_through": n, "unsealed": n, "last_sealed_at": n | null}}

Exit status: 0 when the log verifies, 1 on an integrity failure, 2 on a usage error (bad
arguments, DIR not a directory, no segment file in DIR, a file that cannot be read, a checkpoint
that cannot be used, a sealing key file that is not one).

A log that does not start at segment 1, seq 1 and the zero anchor (its oldest segments were
pruned, FORMAT.md section 14) must hold the auditring.pruned record that justifies its start
(section 9, "Pruned logs").

The Merkle tree over the records (section 15) is rebuilt from them while they are verified: from
the empty tree when the log starts at seq 1, and for a pruned log that starts at seq p + 1 from
the frontier of the tree of size p, taken from the stored strata and the tree base file of p
(section 15.5). Every stored hash of the tree (the tree chunk files, section 15.2) that is
completed while the leaves from p on are added and is followed by a written one is checked
against it, and `tree_root` is its root, over every record since seq 1 (null when a node of a
pruned log's frontier is unavailable, or when a failure came before). A stored hash that differs
is a failure, reported only when nothing failed before.

`--receipt SEQ:HEX` (repeatable) also checks the log against a head obtained out of band: the log
must reach SEQ and record SEQ must have chain hash HEX (FORMAT.md section 11).

`--checkpoint FILE` (repeatable) also proves the log consistent with signed checkpoints
(section 15.4) kept elsewhere: FILE holds one signed note, or a history of them (one JSON object
`{"size": n, "note": "..."}` a line, as `checkpoints.jsonl`). `--key KEY` (repeatable; needed
with --checkpoint) is a trusted verifier key, `<name>+<key id>+<base64>`, or a file holding it
on its first line; each checkpoint must carry a signature by one of them that verifies, and name
the log's origin: ORIGIN, by default `auditring/` followed by the log id's 32 hex digits. A
checkpoint that cannot be used so is a usage error. A log holding fewer records than a
checkpoint's size was cut; one whose first `size` records do not hash to its root was rewritten
after the largest checkpoint it agrees with; a checkpoint the rebuilt tree has no root for (a
pruned log with no tree, or a size below its first seq - 1) is uncheckable (all three integrity
failures). `checkpoints` lists them, smallest first, when nothing failed before.

`--witness KEY` (repeatable) is a witness whose cosignatures (c2sp.org/tlog-cosignature) are
trusted: its cosigner key (type 0x04) or its Ed25519 note key (taken as its cosigner key), or a
file holding it. `--quorum K` (needs --checkpoint; --witness needs it) requires every checkpoint
to carry valid cosignatures by at least K distinct witnesses given (0: none required); a
cosignature by a given witness that does not verify, K larger than the witnesses given, or a
checkpoint short of the quorum is a usage error. A witness's key is not a log's: given as --key,
a cosigner key is refused.

`--seal-key FILE` checks the seal records (section 16): FILE holds the initial sealing key, one
line `auditring-seal-key-v1 <64 lowercase hex digits>` (a file that is not one is a usage
error). Every record of kind auditring.sealed the walk reaches is checked as it is reached
(section 16.4): details of section 16.1, an epoch in order, a MAC that the epoch's key gives;
the first that fails is the failure, at its seq, file and offset. `seals` reports the seals
checked (null without the option): their number, the first and last epochs, `sealed_through`
(the seq of the last seal, 0 for none), `unsealed` (the records after it) and `last_sealed_at`
(the last seal record's timestamp, nanoseconds). `--expect-epoch N` (needs --seal-key) is an
epoch the auditor knows was sealed: a log whose last seal is for an earlier epoch, or that has
none, fails (seal missing, at the end of the last segment walked), once nothing failed before.

Standard library only, and tools/tlog.py (beside this file) for signed notes, checkpoints and
cosignatures.
The section numbers below refer to docs/FORMAT.md.
"""

import codecs
import errno
import hashlib
import hmac
import json
import os
import re
import stat
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import tlog  # noqa: E402

# Section 2 and 3.
HEADER_LEN = 4096
PREFIX_BODY_LEN = 64
PREFIX_LEN = 96
SLOT_OFFSETS = (512, 1024)
SLOT_BODY_LEN = 104
SLOT_LEN = 136
MAGIC = b"AUDITRNG"
MIN_SEGMENT_SIZE = 65536
MAX_SEGMENT_SIZE = 1 << 32
INDEX_STRIDE = 64
MIN_RECORD_LEN = 104
FLAG_SEALED = 1
FLAG_CLEAN = 2
# Section 5.
RECORD_MAGIC = b"AREC"
RECORD_HEADER_LEN = 80
# Section 6.
BODY_FIXED_LEN = 20
BODY_FLAGS = 1 | 2 | 4
# Section 1 and 14.
LOCK_FILE = "LOCK"
EXPORTED_FILE = "EXPORTED"
EXPORTED_TMP_PREFIX = ".EXPORTED.tmp-"
PRUNED_KIND = b"auditring.pruned"
PRUNE_MEMBERS = ("first_seq", "last_seq", "head", "segments", "reason", "exported_to")
# Section 16.
SEALED_KIND = b"auditring.sealed"
SEAL_MEMBERS = ("epoch", "mac")
SEAL_EVOLVE_DOMAIN = b"auditring-seal-evolve-v1"
SEAL_MAC_DOMAIN = b"auditring-seal-v1"
# Epochs are numbered below 2**28 (section 16.2): a forged epoch must not make the verifier
# derive keys for ever.
MAX_SEAL_EPOCHS = 1 << 28
SEAL_KEY_TAG = "auditring-seal-key-v1 "
# The records whose details the walk reads (sections 14.1 and 16.1): read whole, however long.
READ_KINDS = (PRUNED_KIND, SEALED_KIND)
# Section 15.2.
STRATUM_HEIGHT = 8
CHUNK_ENTRIES = 4096
CHUNK_LEN = CHUNK_ENTRIES * 32
CHUNK_NAME = re.compile(r"[0-9a-f]{16}\.t[1-7]")
# Section 15.5.
TILE = 1 << STRATUM_HEIGHT
MAX_STRATUM = 7
BASE_NAME = re.compile(r"[0-9a-f]{16}\.tb")
BASE_REPLACEMENT = re.compile(r"\.[0-9a-f]{16}\.tb\.tmp-.*", re.DOTALL)
# Section 15.4.
DEFAULT_ORIGIN_PREFIX = "auditring/"
# What Rust's str::trim removes (Unicode White_Space), for lines of a checkpoint history.
WHITE_SPACE = "".join(
    chr(c)
    for c in (0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20, 0x85, 0xA0, 0x1680)
    + tuple(range(0x2000, 0x200B))
    + (0x2028, 0x2029, 0x202F, 0x205F, 0x3000)
)

ZERO_HASH = bytes(32)
U64_MAX = (1 << 64) - 1
CHUNK = 1 << 20


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


def sha256(*parts):
    h = hashlib.sha256()
    for p in parts:
        h.update(p)
    return h.digest()


def data_offset_for(file_len):
    """Section 2."""
    max_records = max(file_len - HEADER_LEN, 0) // MIN_RECORD_LEN
    entries = max_records // INDEX_STRIDE + 1
    return HEADER_LEN + -(-(entries * 4) // 4096) * 4096


def record_len(body_len):
    """Section 5: header + body, rounded up to a multiple of 8."""
    return (RECORD_HEADER_LEN + body_len + 7) & ~7


def chain_hash(prev, seq, leaf):
    """Section 7: SHA-256(prev || u64_le(seq) || leaf)."""
    return sha256(prev, struct.pack("<Q", seq), leaf)


def parse_segment_name(name):
    """Section 1: 16 lowercase hex digits + '.seg', number != 0."""
    if not name.endswith(".seg"):
        return None
    digits = name[: -len(".seg")]
    if len(digits) != 16 or any(c not in "0123456789abcdef" for c in digits):
        return None
    n = int(digits, 16)
    return n if n != 0 else None


def parse_chunk_name(name):
    """Sections 1 and 15.2: 16 lowercase hex digits C + '.t' + a digit k from 1 to 7; returns
    (k, C), or None when name is not a tree chunk's."""
    if not CHUNK_NAME.fullmatch(name):
        return None
    return int(name[-1]), int(name[:16], 16)


def chunk_name(stratum, chunk):
    """Section 15.2: the file name of chunk `chunk` of stratum `stratum`."""
    return "%016x.t%d" % (chunk, stratum)


def parse_base_name(name):
    """Sections 1 and 15.5: 16 lowercase hex digits p + '.tb'; returns p, or None when name is
    not a tree base's."""
    if not BASE_NAME.fullmatch(name):
        return None
    return int(name[:16], 16)


def base_start(pruned):
    """Section 15.5: the first leaf of the tree base of `pruned`, t = p - (p mod 256) - 256, or 0
    if that is negative."""
    return max(0, pruned - pruned % TILE - TILE)


def base_name(pruned):
    """Section 15.5: the file name of the tree base of `pruned`."""
    return "%016x.tb" % pruned


def is_base_replacement(name):
    """Section 1: '.' + a tree base name + '.tmp-' + anything (its replacement in progress)."""
    return BASE_REPLACEMENT.fullmatch(name) is not None


def is_temporary(name):
    """Section 1: '.' + a segment or tree chunk name + '.tmp'."""
    if not (name.startswith(".") and name.endswith(".tmp")):
        return False
    inner = name[1:-4]
    return parse_segment_name(inner) is not None or parse_chunk_name(inner) is not None


def is_log_name(name):
    """Section 1: a name the log uses (segment, tree chunk, tree base or its replacement,
    temporary, lock file, export marker or its replacement); an entry with such a name must be a
    regular file."""
    return (
        parse_segment_name(name) is not None
        or parse_chunk_name(name) is not None
        or parse_base_name(name) is not None
        or is_base_replacement(name)
        or is_temporary(name)
        or name in (LOCK_FILE, EXPORTED_FILE)
        or name.startswith(EXPORTED_TMP_PREFIX)
    )


def entry_kind(entry):
    """What a directory entry that is not a regular file is, for messages."""
    if entry.is_symlink():
        return "a symlink"
    mode = entry.stat(follow_symlinks=False).st_mode
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISBLK(mode) or stat.S_ISCHR(mode):
        return "a device"
    return "not a regular file"


def classify(names):
    """Section 1: segments, temporaries, the tree's files (tree chunks, tree bases and their
    replacements in progress) and foreign files (the lock file and the export marker, with its
    replacements in progress, are none of these)."""
    segments, temporary, chunks, foreign = [], [], [], []
    for name in names:
        n = parse_segment_name(name)
        if n is not None:
            segments.append((n, name))
        elif is_temporary(name):
            temporary.append(name)
        elif parse_chunk_name(name) is not None:
            chunks.append(name)
        elif parse_base_name(name) is not None or is_base_replacement(name):
            chunks.append(name)
        elif name in (LOCK_FILE, EXPORTED_FILE) or name.startswith(EXPORTED_TMP_PREFIX):
            continue
        else:
            foreign.append(name)
    segments.sort()
    chunks.sort()
    foreign.sort()
    return segments, temporary, chunks, foreign


class SegmentFile:
    """Positioned reads of one file, with a read-ahead buffer for the record walk."""

    def __init__(self, path):
        self.path = path
        # Not following a symbolic link, not blocking on a FIFO: only a regular file is read
        # (the listing took regular files only; this holds if the entry changed since).
        try:
            self.fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError as e:
            if e.errno == errno.ELOOP:
                raise UsageError("cannot open %s: it is a symbolic link" % path)
            raise UsageError("cannot open %s: %s" % (path, e))
        try:
            st = os.fstat(self.fd)
            if not stat.S_ISREG(st.st_mode):
                raise UsageError("cannot open %s: it is not a regular file" % path)
        except (OSError, UsageError) as e:
            os.close(self.fd)
            if isinstance(e, UsageError):
                raise
            raise UsageError("cannot open %s: %s" % (path, e))
        self.len = st.st_size
        self.buf = b""
        self.buf_start = 0

    def close(self):
        os.close(self.fd)

    def pread(self, offset, n):
        out = bytearray()
        while len(out) < n:
            try:
                b = os.pread(self.fd, n - len(out), offset + len(out))
            except OSError as e:
                raise UsageError("cannot read %s: %s" % (self.path, e))
            if not b:
                raise UsageError("%s: unexpected end of file at %d" % (self.path, offset + len(out)))
            out += b
        return bytes(out)

    def read(self, offset, n):
        """Like pread, through a buffer of CHUNK bytes (never past `limit` set by the caller)."""
        end = self.buf_start + len(self.buf)
        if offset >= self.buf_start and offset + n <= end:
            i = offset - self.buf_start
            return self.buf[i : i + n]
        want = max(n, min(CHUNK, self.len - offset))
        self.buf = self.pread(offset, want)
        self.buf_start = offset
        return self.buf[:n]

    def u32(self, offset):
        return struct.unpack("<I", self.pread(offset, 4))[0]

    def first_nonzero(self, start, end):
        at = start
        while at < end:
            n = min(CHUNK, end - at)
            chunk = self.pread(at, n)
            stripped = chunk.lstrip(b"\0")
            if stripped:
                return at + (n - len(stripped))
            at += n
        return None

    def last_nonzero_end(self, start, end):
        last = None
        at = start
        while at < end:
            n = min(CHUNK, end - at)
            chunk = self.pread(at, n)
            kept = len(chunk.rstrip(b"\0"))
            if kept:
                last = at + kept
            at += n
        return last


def decode_prefix(page):
    """Section 3.1; returns the prefix fields or a reason."""
    if page[0:8] != MAGIC:
        return None, "bad magic: not an auditring segment"
    version, algorithm, stride = struct.unpack_from("<HHI", page, 8)
    if version != 1:
        return None, "unsupported format version %d" % version
    if sha256(page[:PREFIX_BODY_LEN]) != page[PREFIX_BODY_LEN:PREFIX_LEN]:
        return None, "header prefix digest mismatch"
    if algorithm != 1:
        return None, "unsupported chain algorithm %d" % algorithm
    number, file_len, data_offset, created = struct.unpack_from("<QQQq", page, 16)
    if stride != INDEX_STRIDE:
        return None, "invalid header layout: index stride is not 64"
    if number == 0:
        return None, "invalid header layout: segment number is 0"
    if file_len < MIN_SEGMENT_SIZE or file_len > MAX_SEGMENT_SIZE:
        return None, "invalid header layout: file length outside 64 KiB ..= 4 GiB"
    if data_offset != data_offset_for(file_len):
        return None, "invalid header layout: data offset does not match the file length"
    return {
        "number": number,
        "file_len": file_len,
        "data_offset": data_offset,
        "created": created,
        "log_id": page[48:64],
        "digest": page[64:96],
        "raw": page[:PREFIX_LEN],
    }, None


def decode_slot(b, prefix_digest):
    """Section 3.2: ('empty', None) | ('valid', slot) | ('torn', None)."""
    if b == bytes(SLOT_LEN):
        return "empty", None
    if sha256(prefix_digest, b[:SLOT_BODY_LEN]) != b[SLOT_BODY_LEN:SLOT_LEN]:
        return "torn", None
    generation, first_seq, committed_len, last_seq, flags, reserved = struct.unpack_from(
        "<QQQQII", b, 0
    )
    consistent = (
        flags & ~(FLAG_SEALED | FLAG_CLEAN) == 0
        and reserved == 0
        and 1 <= generation < (1 << 63)
        and first_seq != 0
        and last_seq < U64_MAX
        and last_seq + 1 >= first_seq
    )
    if not consistent:
        return "torn", None
    return "valid", {
        "generation": generation,
        "first_seq": first_seq,
        "committed_len": committed_len,
        "last_seq": last_seq,
        "sealed": bool(flags & FLAG_SEALED),
        "clean": bool(flags & FLAG_CLEAN),
        "anchor": b[40:72],
        "head": b[72:104],
        "count": last_seq + 1 - first_seq,
    }


def decode_body(body, body_len=None):
    """Section 6; returns None when the body decodes, else the reason. With `body_len`, `body` is
    only the start of a body of that length, holding at least its kind, actor and trace id: the
    details' UTF-8 is then the caller's to check (see LargeBody)."""
    whole = body_len is None
    if whole:
        body_len = len(body)
    if body_len < BODY_FIXED_LEN:
        return "body is %d bytes, shorter than the 20-byte envelope" % body_len
    version, flags, k, a, t, _timestamp, d = struct.unpack_from("<BBHHHqI", body, 0)
    if version != 1:
        return "unknown envelope version %d" % version
    absent_with_len = (
        (flags & 1 == 0 and a != 0) or (flags & 2 == 0 and t != 0) or (flags & 4 == 0 and d != 0)
    )
    if flags & ~BODY_FLAGS or absent_with_len:
        return "invalid envelope flags 0x%02x" % flags
    if k == 0:
        return "event kind is empty"
    fields = BODY_FIXED_LEN + k + a + t + d
    if fields != body_len:
        return "field lengths add up to %d bytes but the body is %d" % (fields, body_len)
    at = BODY_FIXED_LEN
    for name, n in (("kind", k), ("actor", a), ("trace id", t), ("details", d)):
        if name == "details" and not whole:
            break
        try:
            body[at : at + n].decode("utf-8", errors="strict")
        except UnicodeDecodeError:
            return "the %s is not valid UTF-8" % name
        at += n
    return None


class _Members(list):
    """The members of a JSON object, in order (duplicates kept), as json.loads's pairs hook
    gives them."""


def _int_or_negative_zero(text):
    # "-0" is not an integer in the form section 14.1 reads: keep it apart (as a float).
    return -0.0 if text == "-0" else int(text)


def _reject_constant(name):
    raise ValueError("%s is not JSON" % name)


def _is_utf8(text):
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate escape
        return False
    return True


def _is_u64(v):
    return type(v) is int and 0 <= v <= U64_MAX


def record_kind(body):
    """The kind of a record whose body decodes (section 6)."""
    k = struct.unpack_from("<H", body, 2)[0]
    return body[BODY_FIXED_LEN : BODY_FIXED_LEN + k]


def record_members(body, names):
    """The member rules of section 14.1, which section 16.1 applies too: for a body that decodes
    (section 6), its details as {name: value} if they are one JSON object (RFC 8259) holding each
    of `names` exactly once and no other member (names compared after unescaping; integers are
    ints, "-0", fractions and exponents are not); else (None, why)."""
    _version, flags, k, a, t, _timestamp, _d = struct.unpack_from("<BBHHHqI", body, 0)
    if not flags & 4:
        return None, "no details"
    details = body[BODY_FIXED_LEN + k + a + t :]
    try:
        value = json.loads(
            details.decode("utf-8"),
            object_pairs_hook=_Members,
            parse_int=_int_or_negative_zero,
            parse_constant=_reject_constant,
        )
    except (ValueError, RecursionError) as e:
        return None, "not JSON (%s)" % e
    if not isinstance(value, _Members):
        return None, "the details are not a JSON object"
    members = {}
    for key, v in value:
        if key in members:
            return None, "the member %r is given twice" % key
        if key not in names:
            return None, "an unknown member %r" % key
        members[key] = v
    missing = [n for n in names if n not in members]
    if missing:
        return None, "the member %r is missing" % missing[0]
    return members, None


def _is_hash_hex(v):
    """64 lowercase hex digits, as a JSON string."""
    return isinstance(v, str) and re.fullmatch(r"[0-9a-f]{64}", v) is not None


def prune_details(body, seq):
    """Section 14.1: for the body of the record at seq, (first_seq, last_seq, head) as its
    details say if it is a prune record whose details are exactly those of section 14.1; None
    otherwise (such a record justifies nothing). The body decodes (section 6)."""
    if record_kind(body) != PRUNED_KIND:
        return None
    members, _why = record_members(body, PRUNE_MEMBERS)
    if members is None:
        return None
    first, last, head = members["first_seq"], members["last_seq"], members["head"]
    segments, reason = members["segments"], members["reason"]
    exported_to = members["exported_to"]
    if not (_is_u64(first) and _is_u64(last)):
        return None
    if not _is_hash_hex(head):
        return None
    if type(segments) is not list or not all(
        isinstance(n, str) and _is_utf8(n) for n in segments
    ):
        return None
    if not (isinstance(reason, str) and _is_utf8(reason)):
        return None
    if exported_to is not None and not (isinstance(exported_to, str) and _is_utf8(exported_to)):
        return None
    if first == 0 or first > last + 1 or last >= seq:
        return None
    return first, last, bytes.fromhex(head)


def seal_details(body):
    """Section 16.1: (epoch, mac) as the details of the seal record with this body say, or
    (None, why) when they break a rule. The body decodes (section 6) and is of kind
    auditring.sealed."""
    members, why = record_members(body, SEAL_MEMBERS)
    if members is None:
        return None, why
    epoch, mac = members["epoch"], members["mac"]
    if not _is_u64(epoch):
        return None, "the epoch is not an integer from 0 to 2^64 - 1"
    if not _is_hash_hex(mac):
        return None, "the mac is not 64 lowercase hex digits"
    return (epoch, bytes.fromhex(mac)), None


def read_seal_key(path):
    """Section 16.2: the initial sealing key in its file, one line: SEAL_KEY_TAG and 64
    lowercase hex digits, and a newline (or none). A regular file of at most 4 KiB."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as e:
        raise UsageError("reading the sealing key %s: %s" % (path, e))
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UsageError("reading the sealing key %s: not a regular file" % path)
        data = os.read(fd, 4097)
    except OSError as e:
        raise UsageError("reading the sealing key %s: %s" % (path, e))
    finally:
        os.close(fd)
    if len(data) > 4096:
        raise UsageError("reading the sealing key %s: larger than a key file can be" % path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = ""
    line = text[:-1] if text.endswith("\n") else text
    digits = line[len(SEAL_KEY_TAG) :]
    if not line.startswith(SEAL_KEY_TAG) or not re.fullmatch(r"[0-9a-f]{64}", digits):
        raise UsageError(
            "reading the sealing key %s: not a sealing key: it must be one line, %r and the key "
            "in 64 lowercase hex digits" % (path, SEAL_KEY_TAG.strip())
        )
    return bytes.fromhex(digits)


class SealCheck:
    """Section 16.4: checks each seal record the walk reaches, in seq order, against the
    initial sealing key, and keeps what the report says of the seals. The epoch keys are derived
    from the initial key as the walk goes (section 16.2)."""

    def __init__(self, key):
        self.initial = key
        self.key = None  # (epoch, key of that epoch): the last derived
        self.seals = 0
        self.first_epoch = None
        self.last_epoch = None
        self.sealed_through = 0
        self.last_sealed_at = None

    def epoch_key(self, epoch):
        """key(epoch): SHA-256(SEAL_EVOLVE_DOMAIN || key) applied `epoch` times to key(0)."""
        e, key = self.key if self.key is not None and self.key[0] <= epoch else (0, self.initial)
        while e < epoch:
            key = sha256(SEAL_EVOLVE_DOMAIN, key)
            e += 1
        self.key = (e, key)
        return key

    def check(self, log_id, first_seq, seq, body, prev):
        """The seal record at seq, with this body, the chain hash before it `prev`, in the log
        `log_id` starting at first_seq: None if it verifies, else the reason."""
        details, why = seal_details(body)
        if details is None:
            return "a seal record whose details are not those of a seal: " + why
        epoch, mac = details
        last = self.last_epoch
        if last is not None:
            allowed = epoch in (last, last + 1)
        elif first_seq == 1:
            allowed = epoch == 0
        else:
            # Each epoch before it had a seal record of its own, at a smaller seq.
            allowed = epoch < seq
        if not allowed or epoch >= MAX_SEAL_EPOCHS:
            return (
                "a seal for epoch %d %s: seals were removed, or this one was forged with a later "
                "key"
                % (
                    epoch,
                    "follows a seal for epoch %d" % last
                    if last is not None
                    else "is the log's first, for an epoch it cannot have (0 from seq 1, else below its seq)",
                )
            )
        message = SEAL_MAC_DOMAIN + log_id + struct.pack(">QQ", epoch, seq) + prev
        computed = hmac.new(self.epoch_key(epoch), message, hashlib.sha256).digest()
        if not hmac.compare_digest(computed, mac):
            return (
                "the seal for epoch %d does not verify with that epoch's key: a record at or "
                "before it was rewritten after it was sealed, or the seal is forged" % epoch
            )
        self.seals += 1
        if self.first_epoch is None:
            self.first_epoch = epoch
        self.last_epoch = epoch
        self.sealed_through = seq
        self.last_sealed_at = struct.unpack_from("<q", body, 8)[0]
        return None

    def report(self, first_seq, last_seq, events):
        """The seals as the report shows them: `unsealed` counts the records after the last seal
        (every record when there is none). A walk that failed after a seal in the segment it
        failed in ends before that seal: none of its records is then unsealed."""
        unsealed = 0 if events == 0 else max(0, last_seq - max(self.sealed_through, first_seq - 1))
        return {
            "seals": self.seals,
            "first_epoch": self.first_epoch,
            "last_epoch": self.last_epoch,
            "sealed_through": self.sealed_through,
            "unsealed": unsealed,
            "last_sealed_at": self.last_sealed_at,
        }

    def missing(self, expected, end_path, end_offset):
        """Section 16.4: the failure when the last seal's epoch is below `expected`, else None."""
        if self.last_epoch is not None and self.last_epoch >= expected:
            return None
        return Failure(
            self.sealed_through + 1,
            end_path,
            end_offset,
            "the log was sealed up to epoch %d at least, but its last seal is %s"
            % (
                expected,
                "for epoch %d" % self.last_epoch
                if self.last_epoch is not None
                else "missing (it has none)",
            ),
        )


class LargeBody:
    """A body longer than CHUNK, other than a prune or seal record's, read chunk by chunk rather
    than held: its leaf hash, whether it decodes (section 6, checks in their order), and its
    kind."""

    def __init__(self, f, offset, body_len):
        h = hashlib.sha256()
        # The first chunk holds the fixed part, the kind, the actor and the trace id (at most
        # 20 + 3 * 65535 bytes).
        first = f.pread(offset, min(CHUNK, body_len))
        h.update(first)
        self.bad = decode_body(first, body_len)
        decoder = None
        if self.bad is None:
            k, a, t = struct.unpack_from("<HHH", first, 2)
            self.kind = first[BODY_FIXED_LEN : BODY_FIXED_LEN + k]
            decoder = codecs.getincrementaldecoder("utf-8")("strict")
            pending = [first[BODY_FIXED_LEN + k + a + t :]]
        else:
            self.kind = None
            pending = []
        at = len(first)
        while True:
            for chunk in pending:
                if decoder is not None:
                    try:
                        decoder.decode(chunk, at >= body_len)
                    except UnicodeDecodeError:
                        self.bad = "the details are not valid UTF-8"
                        decoder = None
            if at >= body_len:
                break
            chunk = f.pread(offset + at, min(CHUNK, body_len - at))
            h.update(chunk)
            at += len(chunk)
            pending = [chunk]
        self.leaf = h.digest()


def next_record(f, pos, end):
    """Section 9 step 5.1-5.2: ('end',) | ('nomagic',) | ('overrun', body_len) |
    ('record', header, body, padding, total)."""
    if pos == end:
        return ("end",)
    if end - pos < RECORD_HEADER_LEN:
        return ("nomagic",)
    h = f.read(pos, RECORD_HEADER_LEN)
    if h[0:4] != RECORD_MAGIC:
        return ("nomagic",)
    body_len, seq = struct.unpack_from("<IQ", h, 4)
    total = record_len(body_len)
    if total > end - pos:
        return ("overrun", body_len)
    header = {"body_len": body_len, "seq": seq, "leaf": h[16:48], "chain": h[48:80]}
    if total > CHUNK:
        # Bounded memory whatever the length field says: streamed, unless it is a prune or seal
        # record (whose details sections 14.1 and 16.1 read).
        body = LargeBody(f, pos + RECORD_HEADER_LEN, body_len)
        if body.kind in READ_KINDS:
            body = f.pread(pos + RECORD_HEADER_LEN, body_len)
        after = pos + RECORD_HEADER_LEN + body_len
        padding = f.pread(after, total - RECORD_HEADER_LEN - body_len)
        return ("record", header, body, padding, total)
    rec = f.read(pos, total)
    body = rec[RECORD_HEADER_LEN : RECORD_HEADER_LEN + body_len]
    padding = rec[RECORD_HEADER_LEN + body_len :]
    return ("record", header, body, padding, total)


def check_record(header, body, padding, seq, prev):
    """Section 9 step 5.3; returns (chain, None) or (None, reason)."""
    if header["seq"] != seq:
        return None, "expected seq %d, found %d" % (seq, header["seq"])
    large = isinstance(body, LargeBody)
    leaf = body.leaf if large else sha256(body)
    if leaf != header["leaf"]:
        return None, "leaf hash mismatch: stored %s, body hashes to %s" % (
            header["leaf"].hex(),
            leaf.hex(),
        )
    if padding.strip(b"\0"):
        return None, "non-zero byte in record padding that must be zero"
    bad = body.bad if large else decode_body(body)
    if bad is not None:
        return None, "bad event body: " + bad
    chain = chain_hash(prev, seq, leaf)
    if chain != header["chain"]:
        return None, "chain hash mismatch: stored %s, expected %s" % (
            header["chain"].hex(),
            chain.hex(),
        )
    return chain, None


class TreeCheck:
    """Section 15: the Merkle tree over the records, rebuilt from their leaf fields as the walk
    checks them, kept as its frontier (the roots of the complete subtrees covering the records
    so far, largest first). A log that starts at seq 1 starts from the empty tree; a pruned log
    that starts at seq f = p + 1 starts from the frontier of the tree of size p (section 15.5),
    taken from the stored strata and the tree base file of p, and has no tree at all (no root,
    nothing compared) if a node of that frontier is unavailable. Every complete node of a level
    8k (k >= 1) is compared, as it is completed while the leaves from p on are added, with entry
    `index` of stratum k (section 15.2), if that entry and the next one of the stratum are
    written (the writer writes a stratum in index order); a chunk that is missing, unreadable or
    not 131072 bytes holds nothing written. Stored hashes are never used in place of the
    records walked; only the pruned part of the tree, which no record walked covers, is taken
    from them."""

    def __init__(self, directory, sizes):
        self.dir = directory
        self.frontier = []  # None when the log has no tree to rebuild (section 15.5)
        self.size = 0
        self.roots = {size: None for size in sizes}  # the checkpoints' sizes -> root once reached
        self.mismatch = None  # the first stored hash found not to match the records
        self.chunks = {}  # (stratum, chunk) -> open descriptor, or None for a missing chunk

    def close(self):
        for fd in self.chunks.values():
            if fd is not None:
                os.close(fd)
        self.chunks = {}

    def start_at(self, first_seq):
        """The log starts at `first_seq`: from the empty tree at seq 1, else from the frontier of
        the tree of size p = first_seq - 1 (section 15.5), or with no tree if a node of it is
        unavailable."""
        if first_seq == 1:
            return
        if first_seq < 1:
            self.frontier = None
            return
        pruned = first_seq - 1
        base = self.read_base(pruned)
        start = base_start(pruned)

        def node(level, index):
            """Node (level, index) of the tree, which ends at or before leaf `pruned`, or None
            when it is unavailable (section 15.5). Recursion depth <= 64."""
            if level == 0:
                if base is not None and start <= index < pruned:
                    return base[(index - start) * 32 : (index - start + 1) * 32]
                return None
            if level % STRATUM_HEIGHT == 0 and level // STRATUM_HEIGHT <= MAX_STRATUM:
                stratum = level // STRATUM_HEIGHT
                # The successor first: if it is written, the entry was whole before it is read.
                written_after = self.read(stratum, index + 1)
                entry = self.read(stratum, index)
                if entry is not None and written_after is not None:
                    return entry
            left = node(level - 1, 2 * index)
            if left is None:
                return None
            right = node(level - 1, 2 * index + 1)
            if right is None:
                return None
            return sha256(b"\x01", left, right)

        frontier = []
        for bit in range(pruned.bit_length() - 1, -1, -1):
            if pruned >> bit & 1:
                hash_ = node(bit, (pruned >> bit) - 1)
                if hash_ is None:
                    self.frontier = None
                    return
                frontier.append(hash_)
        self.frontier = frontier
        self.size = pruned
        if pruned in self.roots:
            self.roots[pruned] = self.root()

    def read_base(self, pruned):
        """Section 15.5: the contents of the tree base file of `pruned` (the leaf hashes of leaves
        base_start(pruned) to pruned - 1), if it is valid: a regular file (not followed if a
        symlink) of exactly that many hashes. None when it is anything else, or absent."""
        want = (pruned - base_start(pruned)) * 32
        try:
            fd = os.open(
                os.path.join(self.dir, base_name(pruned)),
                os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK,
            )
        except OSError:
            return None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode) or st.st_size != want:
                return None
            data = b""
            while len(data) < want:
                more = os.pread(fd, want - len(data), len(data))
                if not more:
                    break
                data += more
            # Exactly `want` bytes, and no more (the file may have changed since fstat).
            if len(data) != want or os.pread(fd, 1, want):
                return None
            return data
        except OSError:
            return None
        finally:
            os.close(fd)

    def read(self, stratum, index):
        """Entry `index` of `stratum`, or None if it is not written (its chunk is missing, cannot
        be read or is not 131072 bytes, or the entry is 32 zero bytes)."""
        key = (stratum, index // CHUNK_ENTRIES)
        if key in self.chunks:
            fd = self.chunks[key]
            if fd is None:
                return None
        else:
            path = os.path.join(self.dir, chunk_name(*key))
            try:
                fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
            except FileNotFoundError:
                self.chunks[key] = None
                return None
            except OSError:
                return None
            try:
                st = os.fstat(fd)
                usable = stat.S_ISREG(st.st_mode) and st.st_size == CHUNK_LEN
            except OSError:
                usable = False
            if not usable:
                os.close(fd)
                return None
            self.chunks[key] = fd
        try:
            entry = os.pread(fd, 32, (index % CHUNK_ENTRIES) * 32)
        except OSError:
            return None
        return entry if len(entry) == 32 and entry != ZERO_HASH else None

    def completed(self, level, index, node):
        """Node (level, index) of the tree, just completed, is `node`."""
        if self.mismatch is not None or level == 0 or level % STRATUM_HEIGHT:
            return
        stratum = level // STRATUM_HEIGHT
        stored = self.read(stratum, index)
        written_after = self.read(stratum, index + 1)
        if stored is not None and written_after is not None and stored != node:
            self.mismatch = Failure(
                None,
                os.path.join(self.dir, chunk_name(stratum, index // CHUNK_ENTRIES)),
                (index % CHUNK_ENTRIES) * 32,
                "the stored hash of tree node (level %d, index %d) is not the hash of the records "
                "it covers (%s)" % (level, index, node.hex()),
            )

    def push(self, leaf):
        """Appends the next record, whose leaf field (checked) is `leaf`: its leaf hash, then one
        node for each trailing 1 bit of the old size, children before parents."""
        if self.frontier is None:
            return
        node = sha256(b"\x00", leaf)
        level, index = 0, self.size
        self.completed(level, index, node)
        while index & 1:
            node = sha256(b"\x01", self.frontier.pop(), node)
            level += 1
            index >>= 1
            self.completed(level, index, node)
        self.frontier.append(node)
        self.size += 1
        if self.size in self.roots:
            self.roots[self.size] = self.root()

    def root(self):
        """MTH of the tree rebuilt so far (section 15.1: over every record since seq 1, for a
        pruned log too), or None when the log has no tree to rebuild: the frontier folded from
        the right."""
        if self.frontier is None:
            return None
        if not self.frontier:
            return tlog.EMPTY_ROOT
        root = self.frontier[-1]
        for left in reversed(self.frontier[:-1]):
            root = sha256(b"\x01", left, root)
        return root

    def root_at(self, size):
        """The root at `size`, if the rebuilt tree held `size` leaves at some point (from the
        frontier of a pruned log's start on); None otherwise."""
        return self.roots.get(size)


class Walk:
    def __init__(self, directory, wanted, checkpoint_sizes=(), seal_key=None):
        self.dir = directory
        self.chain = None  # (next_seq, prev)
        self.log_id = None
        self.first_seq = 0
        self.torn_tail = None
        self.notes = []  # findings that are not failures
        self.uncommitted = 0  # valid records found past committed lengths (section 9 step 6)
        self.wanted = wanted  # seq -> None, filled with (chain, file, offset)
        # Where the log starts: (segment number, file, commit slot offset, first seq, anchor).
        self.start = None
        self.pruned = []  # (first_seq, last_seq, head) of every prune record found (section 14.1)
        # The first segment found not sealed, as the failure it is if a sealed one follows
        # (section 9, step 2.4).
        self.unsealed = None
        # Set once a segment was found past a tear (section 9, step 3): every later segment
        # must hold nothing committed either.
        self.past_tear = False
        # The Merkle tree, rebuilt from the records walked (section 15).
        self.tree = TreeCheck(directory, checkpoint_sizes)
        # The last segment walked (not past a tear), and where its records end.
        self.last_end = None
        # The seal check (section 16.4), given the initial sealing key.
        self.seal = SealCheck(seal_key) if seal_key is not None else None

    def note_torn_tail(self, f, path, start, file_len, after_seq):
        """The first non-zero bytes past the last valid record (from start) are the torn tail."""
        last = f.last_nonzero_end(start, file_len)
        if last is not None and self.torn_tail is None:
            self.torn_tail = {
                "file": path,
                "offset": start,
                "len": last - start,
                "after_seq": after_seq,
            }

    def note_prune(self, seq, body):
        if isinstance(body, LargeBody):
            return  # not a prune record: those are read whole
        found = prune_details(body, seq)
        if found is not None:
            self.pruned.append(found)

    def note_seal(self, seq, body, prev):
        """Section 9, "Seals": checks the record at seq, whose chain hash before it is prev, if
        it is a seal record and a sealing key was given; returns the reason it fails, or None."""
        if self.seal is None or isinstance(body, LargeBody) or record_kind(body) != SEALED_KIND:
            return None  # a large body is not a seal record's: those are read whole
        return self.seal.check(self.log_id, self.first_seq, seq, body, prev)

    def unjustified_start(self):
        """Section 9, "Pruned logs": a log that does not start at segment 1, seq 1, anchor all
        zeros needs the prune record that says where the records before it ended; or, for a
        removal a crash interrupted (section 14.2), one whose range holds the seq before the
        log's first. Returns the failure, or None."""
        if self.start is None:
            return None
        number, path, offset, first_seq, anchor = self.start
        if number == 1 and first_seq == 1 and anchor == ZERO_HASH:
            return None
        before = first_seq - 1
        for first, last, head in self.pruned:
            if first <= before < last or (before == last and head == anchor):
                return None
        return Failure(
            first_seq,
            path,
            offset,
            "unpruned start: the log starts at seq %d, anchored at %s, but no auditring.pruned "
            "record says seqs before it were pruned (segments removed by hand?)"
            % (first_seq, anchor.hex()),
        )

    def check_checkpoints(self, checkpoints, last_seq):
        """Sections 9 ("Checkpoints") and 15.4: compares the log with each opened checkpoint,
        smallest first, the root at size n being the rebuilt tree's once it held n leaves (a
        pruned log's tree holds first seq - 1 leaves before its first record is added, and has
        no root at a smaller size). Returns the list the report shows and the first failure (or
        None): a checkpoint larger than the log shows a cut (at the end of the last segment
        walked), one whose root differs a rewrite after the largest checkpoint the log agrees
        with, one the rebuilt tree has no root for (no tree, or a size below the log's first
        seq - 1) says so."""
        checks, failure, agreed = [], None, 0
        end_path, end_offset = self.last_end or (self.dir, 0)
        for checkpoint, signed_by in sorted(checkpoints, key=lambda c: c[0].size):
            size, signed = checkpoint.size, checkpoint.root_hash
            computed = tlog.EMPTY_ROOT if size == 0 else self.tree.root_at(size)
            consistent = computed == signed
            checks.append(
                {
                    "size": size,
                    "root": signed.hex(),
                    "signed_by": signed_by,
                    "consistent": consistent,
                }
            )
            if consistent:
                agreed = max(agreed, size)
                continue
            if failure is not None:
                continue
            if size > last_seq:
                failure = Failure(
                    last_seq + 1,
                    end_path,
                    end_offset,
                    "a checkpoint signed the first %d records, but the log ends at seq %d: "
                    "records %d to %d were cut" % (size, last_seq, last_seq + 1, size),
                )
            elif computed is not None:
                failure = Failure(
                    agreed + 1,
                    self.dir,
                    0,
                    "the log's first %d records are not those a checkpoint signed (root %s): "
                    "records after seq %d and up to seq %d were rewritten"
                    % (size, signed.hex(), agreed, size),
                )
            else:
                # The rebuilt tree has no root at this size: the log has no tree to rebuild (a
                # node of its frontier is unavailable, section 15.5), or the size is below the
                # log's first seq - 1.
                failure = Failure(
                    self.first_seq,
                    self.dir,
                    0,
                    "a checkpoint signed the first %d records, but the log starts at seq %d: its "
                    "root cannot be recomputed without the pruned records" % (size, self.first_seq),
                )
        return checks, failure

    def remember(self, seq, chain, path, offset):
        if seq in self.wanted:
            self.wanted[seq] = (chain, path, offset)

    def segment(self, number, name):
        path = os.path.join(self.dir, name)
        f = SegmentFile(path)
        try:
            self._segment(f, path, number, name)
        finally:
            f.close()

    def _segment(self, f, path, number, name):
        def fail(seq, offset, reason):
            return Failure(seq, path, offset, reason)

        # Step 1: header.
        if f.len < HEADER_LEN:
            raise fail(
                self.chain[0] if self.chain else None,
                0,
                "truncated header: the file is %d bytes, shorter than the 4096-byte header"
                % f.len,
            )
        page = f.pread(0, HEADER_LEN)
        prefix, why = decode_prefix(page)
        if prefix is None:
            raise fail(self.chain[0] if self.chain else None, 0, why)
        if prefix["number"] != number:
            raise fail(
                None,
                16,
                "the header says segment %d but the file is named for segment %d"
                % (prefix["number"], number),
            )
        if self.log_id is None:
            self.log_id = prefix["log_id"]
        if prefix["log_id"] != self.log_id:
            raise fail(None, 48, "the segment belongs to another log (log id differs)")
        for start, end in ((PREFIX_LEN, 512), (512 + SLOT_LEN, 1024), (1024 + SLOT_LEN, HEADER_LEN)):
            rest = page[start:end].lstrip(b"\0")
            if rest:
                raise fail(
                    None,
                    end - len(rest),
                    "non-zero byte in the header page that must be zero",
                )

        # Step 2: commit slots. A Torn slot may be one a live writer is writing: read again.
        def slots(page):
            return [decode_slot(page[at : at + SLOT_LEN], prefix["digest"]) for at in SLOT_OFFSETS]

        states = slots(page)
        for _ in range(3):
            if all(state != "torn" for state, _ in states):
                break
            page = f.pread(0, HEADER_LEN)
            if page[:PREFIX_LEN] != prefix["raw"]:
                break
            states = slots(page)
        valid = [(i, s) for i, (state, s) in enumerate(states) if state == "valid"]
        current = max(valid, key=lambda v: v[1]["generation"]) if valid else None
        older = None
        if len(valid) == 2 and valid[0][1]["generation"] != valid[1][1]["generation"]:
            older = min(valid, key=lambda v: v[1]["generation"])
        finished = current is not None and (current[1]["sealed"] or current[1]["clean"])
        for i, (state, _) in enumerate(states):
            unwritten_ok = (
                not finished and (current is None or current[1]["generation"] == 1)
            )
            if state == "valid" or (state == "empty" and unwritten_ok):
                continue
            raise fail(None, SLOT_OFFSETS[i], "commit slot %d is damaged (%s)" % (i, state))
        if len(valid) == 2 and valid[0][1]["generation"] == valid[1][1]["generation"]:
            raise fail(
                None,
                SLOT_OFFSETS[1],
                "both commit slots claim generation %d, which only one of them can hold "
                "(a slot copied over the other), so the segment's current state is unknown"
                % valid[0][1]["generation"],
            )
        for v in (current, older):
            if v is not None and v[1]["generation"] % 2 != v[0]:
                raise fail(
                    None,
                    SLOT_OFFSETS[v[0]],
                    "commit slot disagrees with the records: "
                    "a slot's generation does not match its position",
                )

        # Step 3: where the segment starts.
        if self.chain is not None:
            next_seq, prev = self.chain
        elif number == 1:
            next_seq, prev = 1, ZERO_HASH
        elif current is not None:
            next_seq, prev = current[1]["first_seq"], current[1]["anchor"]
        else:
            raise fail(None, SLOT_OFFSETS[0], "the first segment has no commit slot")
        if self.chain is None:
            self.first_seq = next_seq
            self.tree.start_at(next_seq)
            at = SLOT_OFFSETS[current[0]] if current is not None else SLOT_OFFSETS[0]
            self.start = (number, path, at, next_seq, prev)
        # Past a tear (section 9, step 3): a segment activated after records that a crash lost
        # from the unsealed segment before it, holding nothing committed.
        holds_nothing = current is None or (
            current[1]["last_seq"] + 1 == current[1]["first_seq"]
            and not current[1]["sealed"]
            and not current[1]["clean"]
        )
        breaks = current is not None and (
            current[1]["first_seq"] != next_seq or current[1]["anchor"] != prev
        )
        if self.past_tear or (breaks and holds_nothing and self.unsealed is not None):
            if not holds_nothing:
                raise fail(
                    current[1]["first_seq"],
                    SLOT_OFFSETS[current[0]],
                    "segment does not continue the previous one: "
                    "committed records follow a break in the chain",
                )
            # The chain is not advanced past the tear.
            self.past_tear = True
            self.note_torn_tail(f, path, prefix["data_offset"], prefix["file_len"], next_seq - 1)
            self.notes.append(
                "%s: past a tear (the chain ends at seq %d in the segment before, short of where "
                "this one was activated); it holds nothing committed, as when a crash interrupts "
                "the sealing of the segment before it (opening the log for writing removes it)"
                % (name, next_seq - 1)
            )
            return
        if current is not None:
            ci, cs = current
            if cs["first_seq"] != next_seq:
                raise fail(
                    next_seq,
                    SLOT_OFFSETS[ci],
                    "segment does not continue the previous one: the commit slot's first seq",
                )
            if cs["anchor"] != prev:
                raise fail(
                    next_seq,
                    SLOT_OFFSETS[ci],
                    "segment does not continue the previous one: "
                    "the commit slot's anchor is not the previous head",
                )

        # Step 4: lengths.
        data_offset = prefix["data_offset"]
        file_len = prefix["file_len"]
        committed = current[1]["committed_len"] if current else data_offset
        if committed < data_offset or committed > file_len:
            raise fail(None, SLOT_OFFSETS[0], "committed length outside the data region")
        if f.len < committed:
            raise fail(
                None,
                f.len,
                "segment cut short: the header commits %d bytes but the file has %d"
                % (committed, f.len),
            )
        if f.len != file_len:
            raise fail(
                None,
                min(f.len, file_len),
                "the file is %d bytes but its header says %d" % (f.len, file_len),
            )

        # Step 5: the committed records.
        seq, head = next_seq, prev
        older_seen = older is not None and older[1]["count"] == 0
        if older is not None and older[1]["count"] == 0:
            oi, o = older
            if o["committed_len"] != data_offset or o["head"] != o["anchor"]:
                raise fail(None, SLOT_OFFSETS[oi], "an older empty slot with a length or head")
        pos = data_offset
        while True:
            step = next_record(f, pos, committed)
            if step[0] == "end":
                break
            if step[0] == "nomagic":
                raise fail(seq, pos, "no record header here (bad record magic)")
            if step[0] == "overrun":
                raise fail(
                    seq,
                    pos,
                    "record body of %d bytes runs past the committed end at byte %d"
                    % (step[1], committed),
                )
            _, header, body, padding, total = step
            chain, why = check_record(header, body, padding, seq, head)
            if chain is None:
                raise fail(seq, pos, why)
            self.note_prune(seq, body)
            why = self.note_seal(seq, body, head)
            if why is not None:
                raise fail(seq, pos, why)
            self.tree.push(header["leaf"])
            head = chain
            k = seq - next_seq
            if k % INDEX_STRIDE == 0:
                entry = k // INDEX_STRIDE
                at = HEADER_LEN + entry * 4
                if at + 4 > data_offset:
                    raise fail(seq, pos, "more records than the index can hold")
                found = f.u32(at)
                if found != pos:
                    raise fail(
                        seq,
                        at,
                        "index entry %d says byte %d, but record %d starts at byte %d"
                        % (entry, found, seq, pos),
                    )
            end = pos + total
            if older is not None and older[1]["count"] > 0 and older[1]["last_seq"] == seq:
                oi, o = older
                if o["committed_len"] != end or o["head"] != head:
                    raise fail(
                        seq, SLOT_OFFSETS[oi], "the older commit slot disagrees with the records"
                    )
                older_seen = True
            self.remember(seq, head, path, pos)
            pos = end
            seq += 1
        if current is not None:
            ci, cs = current
            if cs["last_seq"] != seq - 1:
                raise fail(
                    cs["last_seq"],
                    SLOT_OFFSETS[ci],
                    "the commit slot's last seq is not the last record's",
                )
            if cs["head"] != head:
                raise fail(
                    cs["last_seq"],
                    SLOT_OFFSETS[ci],
                    "the commit slot's head is not the last record's chain hash",
                )
        if older is not None and not older_seen:
            oi, o = older
            raise fail(
                o["last_seq"],
                SLOT_OFFSETS[oi],
                "the older commit slot names a record that is not there",
            )

        # Step 6: what follows the committed records.
        sealed = current is not None and current[1]["sealed"]
        if sealed and self.unsealed is not None:
            raise self.unsealed
        if not sealed and self.unsealed is None:
            self.unsealed = fail(
                next_seq,
                SLOT_OFFSETS[current[0]] if current is not None else SLOT_OFFSETS[0],
                "a segment before a sealed one is not sealed",
            )
        clean = current is not None and current[1]["clean"]
        end = committed
        if not sealed and not clean:
            while True:
                step = next_record(f, end, file_len)
                if step[0] != "record":
                    break
                _, header, body, padding, total = step
                chain, _why = check_record(header, body, padding, seq, head)
                if chain is None:
                    break
                # Records past the committed length that continue the chain count (section 9).
                self.note_prune(seq, body)
                self.tree.push(header["leaf"])
                k = seq - next_seq
                if k % INDEX_STRIDE == 0:
                    at = HEADER_LEN + (k // INDEX_STRIDE) * 4
                    found = f.u32(at)
                    if found != end and found != 0:
                        raise fail(
                            seq,
                            at,
                            "index entry %d says byte %d, but record %d starts at byte %d"
                            % (k // INDEX_STRIDE, found, seq, end),
                        )
                why = self.note_seal(seq, body, head)
                if why is not None:
                    raise fail(seq, end, why)
                self.remember(seq, chain, path, end)
                self.uncommitted += 1
                head = chain
                end += total
                seq += 1
        used = -(-(seq - next_seq) // INDEX_STRIDE)
        unused_index = HEADER_LEN + used * 4
        if sealed or clean:
            at = f.first_nonzero(unused_index, data_offset)
            if at is not None:
                raise fail(None, at, "non-zero byte in unused index entries that must be zero")
            at = f.first_nonzero(end, file_len)
            if at is not None:
                raise fail(
                    seq, at, "non-zero byte in the space after the last record that must be zero"
                )
        else:
            self.note_torn_tail(f, path, end, file_len, seq - 1)
            at = f.first_nonzero(unused_index, data_offset)
            if at is not None:
                self.notes.append(
                    "%s: index entries past the last valid record, from byte %d "
                    "(left by a crash, or by a writer still writing)" % (name, at)
                )
        self.chain = (seq, head)
        self.last_end = (path, end)


def read_text(path, what):
    """The UTF-8 text of the file at path, as it is (no newline translation)."""
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError("reading %s %s: %s" % (what, path, e))


def checkpoint_notes(path):
    """Section 15.4: the signed notes in the file at path: the whole file, or, when it starts
    with '{', a history of them (checkpoints.jsonl): one JSON object a line, the note in
    "note" (blank lines skipped)."""
    text = read_text(path, "the checkpoint file")
    if not text.startswith("{"):
        return [text]
    notes = []
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    lines = [line[:-1] if line.endswith("\r") else line for line in lines]
    for n, line in enumerate((line for line in lines if line.strip(WHITE_SPACE)), 1):
        try:
            value = json.loads(line, parse_constant=_reject_constant)
        except (ValueError, RecursionError):
            value = None
        note = value.get("note") if isinstance(value, dict) else None
        if not isinstance(note, str):
            raise UsageError(
                '%s line %d: not a checkpoint history line ({"size":..,"note":..})' % (path, n)
            )
        notes.append(note)
    return notes


def verifier_key(arg):
    """A trusted key argument: the verifier key itself, or a file holding it on its first
    line."""
    text = arg
    if "+" not in arg or os.path.exists(arg):
        first = read_text(arg, "the key").split("\n", 1)[0]
        text = first.strip(WHITE_SPACE)
    try:
        return tlog.parse_verifier_key(text)
    except tlog.TlogError as e:
        raise UsageError("the key %s: %s" % (arg, e))


def signature_verifies(key, text, signature):
    """Whether `signature` (the bytes after the key id) is key's signature of the note text:
    Ed25519 over the text for a key of type 0x01, a cosignature/v1 (a timestamp of at most
    2^63 - 1 and Ed25519 over the cosigned message) for a key of type 0x04."""
    if key.sig_type == tlog.SIG_ED25519:
        return len(signature) == tlog.ED25519_SIG_LEN and tlog.ed25519_verify(
            key.public_key, text.encode("utf-8"), signature
        )
    if len(signature) != tlog.TIMESTAMP_LEN + tlog.ED25519_SIG_LEN:
        return False
    timestamp = int.from_bytes(signature[: tlog.TIMESTAMP_LEN], "big")
    if timestamp > tlog.MAX_TIMESTAMP:
        return False
    return tlog.ed25519_verify(
        key.public_key,
        tlog.cosignature_message(text, timestamp),
        signature[tlog.TIMESTAMP_LEN :],
    )


def open_checkpoint(note, keys):
    """Section 15.4: the checkpoint a signed note carries, and the names of the trusted keys
    whose signatures on it verified (in note order, once per key). A signature line whose name
    and key id are a trusted key's must verify; other lines are ignored; at least one must be a
    trusted key's. Raises TlogError or ValueError saying why the note cannot be used."""
    parsed = tlog.parse_note(note)
    signed_by, seen = [], set()
    for sig in parsed.signatures:
        matching = {k for k in keys if (k.name, k.key_id) == (sig.name, sig.key_id)}
        if not matching:
            continue
        if len(matching) > 1:
            raise ValueError(
                "the signature by %s+%08x names two different trusted keys" % (sig.name, sig.key_id)
            )
        if not signature_verifies(matching.pop(), parsed.text, sig.signature):
            raise ValueError(
                "the signature by the trusted key %s+%08x does not verify" % (sig.name, sig.key_id)
            )
        if (sig.name, sig.key_id) not in seen:
            seen.add((sig.name, sig.key_id))
            signed_by.append(sig.name)
    if not signed_by:
        raise ValueError("no signature is by a trusted key")
    return tlog.parse_checkpoint(parsed.text), signed_by


def witness_key(arg):
    """A witness's key argument (as verifier_key), in its cosigner form (type 0x04): a witness
    given by its Ed25519 note key (type 0x01) cosigns with the same key under type 0x04, whose
    key id differs (c2sp.org/tlog-cosignature)."""
    k = verifier_key(arg)
    if k.sig_type == tlog.SIG_COSIGNATURE_V1:
        return k
    kid = tlog.key_id(k.name, tlog.SIG_COSIGNATURE_V1, k.public_key)
    return tlog.VerifierKey(k.name, kid, tlog.SIG_COSIGNATURE_V1, k.public_key)


def open_checkpoints(notes, keys, witnesses=(), quorum=0):
    """Every checkpoint given, opened (see open_checkpoint), and with a quorum, cosigned by that
    many distinct witnesses of `witnesses` (cosigner keys), every cosignature by one of them
    verifying (tlog.verify_cosignatures); a usage error for the first that cannot be."""
    if notes and not keys:
        raise UsageError("checkpoints were given but no key to trust: add the log's verifier key")
    for k in keys:
        if k.sig_type != tlog.SIG_ED25519:
            raise UsageError(
                "%s is a witness's cosigner key, not a log's key: give it as a witness"
                % tlog.format_verifier_key(k.name, k.public_key, k.sig_type)
            )
    opened = []
    for i, note in enumerate(notes, 1):
        try:
            checkpoint, signed_by = open_checkpoint(note, keys)
        except (tlog.TlogError, ValueError) as e:
            raise UsageError("checkpoint %d: %s" % (i, e))
        if quorum:
            try:
                tlog.verify_cosignatures(note, witnesses, quorum)
            except (tlog.TlogError, ValueError) as e:
                raise UsageError("checkpoint %d (size %d): %s" % (i, checkpoint.size, e))
        opened.append((checkpoint, signed_by))
    return opened


class Args:
    """The command line: the directory, receipts, checkpoint files, trusted keys, witnesses,
    quorum, origin, sealing key file and expected epoch (None for an option not given)."""

    def __init__(self):
        self.directory = None
        self.receipts, self.checkpoint_files, self.keys, self.witnesses = [], [], [], []
        self.quorum = None
        self.origin = None
        self.seal_key = None
        self.expect_epoch = None


# Options that take a value, and those of them given once at most.
VALUE_OPTIONS = (
    "--receipt",
    "--checkpoint",
    "--key",
    "--witness",
    "--quorum",
    "--origin",
    "--seal-key",
    "--expect-epoch",
)
SINGLE_OPTIONS = {
    "--quorum": "quorum",
    "--origin": "origin",
    "--seal-key": "seal_key",
    "--expect-epoch": "expect_epoch",
}


def whole_number(name, value):
    """A decimal integer from 0 to 2^64 - 1."""
    if not re.fullmatch(r"[0-9]+", value) or int(value) > U64_MAX:
        raise UsageError("%s takes a whole number, not %r" % (name, value))
    return int(value)


def parse_args(argv):
    args = Args()
    i = 0
    while i < len(argv):
        a = argv[i]
        name, eq, value = a.partition("=")
        if name in VALUE_OPTIONS:
            if not eq:
                i += 1
                if i >= len(argv):
                    raise UsageError("%s needs a value" % name)
                value = argv[i]
            if name in SINGLE_OPTIONS and getattr(args, SINGLE_OPTIONS[name]) is not None:
                raise UsageError("%s given twice" % name)
            if name == "--receipt":
                seq, _, hexed = value.partition(":")
                try:
                    seq = int(seq)
                    chain = bytes.fromhex(hexed)
                except ValueError:
                    raise UsageError("bad receipt %r: expected SEQ:HEX" % value)
                if seq < 1 or len(chain) != 32:
                    raise UsageError("bad receipt %r: expected SEQ:HEX (64 hex digits)" % value)
                args.receipts.append((seq, chain))
            elif name == "--checkpoint":
                args.checkpoint_files.append(value)
            elif name == "--key":
                args.keys.append(value)
            elif name == "--witness":
                args.witnesses.append(value)
            elif name == "--quorum":
                args.quorum = whole_number(name, value)
            elif name == "--origin":
                args.origin = value
            elif name == "--seal-key":
                args.seal_key = value
            else:
                args.expect_epoch = whole_number(name, value)
        elif a.startswith("-") and a != "-":
            raise UsageError("unknown option %s" % a)
        elif args.directory is None:
            args.directory = a
        else:
            raise UsageError("more than one directory given")
        i += 1
    if args.directory is None:
        raise UsageError("no directory given")
    if args.checkpoint_files and not args.keys:
        raise UsageError("--checkpoint needs --key: the key whose signatures are trusted")
    if args.witnesses and args.quorum is None:
        raise UsageError("--witness needs --quorum: how many witnesses must cosign")
    if args.quorum is not None and not args.checkpoint_files:
        raise UsageError("--quorum needs --checkpoint: the checkpoints to be cosigned")
    if args.expect_epoch is not None and args.seal_key is None:
        raise UsageError("--expect-epoch needs --seal-key: the key the seals are checked with")
    return args


USAGE = (
    "usage: python3 tools/verify_log.py DIR [--receipt SEQ:HEX ...] "
    "[--checkpoint FILE ... --key KEY ... [--witness KEY ... --quorum K] [--origin ORIGIN]] "
    "[--seal-key FILE [--expect-epoch N]]"
)


def main(argv):
    try:
        args = parse_args(argv[1:])
        directory, receipts, origin = args.directory, args.receipts, args.origin
        if not os.path.isdir(directory):
            raise UsageError("%s is not a directory" % directory)
        notes = [note for path in args.checkpoint_files for note in checkpoint_notes(path)]
        keys = [verifier_key(k) for k in args.keys]
        witnesses = [witness_key(w) for w in args.witnesses]
        checkpoints = open_checkpoints(notes, keys, witnesses, args.quorum or 0)
        seal_key = read_seal_key(args.seal_key) if args.seal_key is not None else None
        names = []
        for entry in os.scandir(directory):
            if entry.is_file(follow_symlinks=False):
                names.append(entry.name)
            elif is_log_name(entry.name):
                # Section 1: a name of the log taken by a symlink or a special file.
                raise UsageError(
                    "%s is not an auditring log: %s is %s, not a regular file"
                    % (directory, entry.name, entry_kind(entry))
                )
        segments, _temporary, _chunks, foreign = classify(names)
        if not segments:
            raise UsageError("%s is not an auditring log: it holds no segment files" % directory)
        walk = Walk(
            directory,
            {seq: None for seq, _ in receipts},
            [c.size for c, _ in checkpoints],
            seal_key,
        )
        error = None
        try:
            for i, (number, name) in enumerate(segments):
                if i > 0 and number != segments[i - 1][0] + 1:
                    raise Failure(
                        walk.chain[0] if walk.chain else None,
                        os.path.join(directory, name),
                        0,
                        "segment %d is missing" % (segments[i - 1][0] + 1),
                    )
                walk.segment(number, name)
            # Section 9, "Pruned logs": once the walk completed.
            error = walk.unjustified_start()
        except Failure as e:
            error = e
        finally:
            walk.tree.close()
        # Section 15.4: checkpoints of another log (or origin) cannot be used.
        if walk.log_id is not None:
            expected = origin if origin is not None else DEFAULT_ORIGIN_PREFIX + walk.log_id.hex()
            for checkpoint, _ in checkpoints:
                if checkpoint.origin != expected:
                    raise UsageError(
                        "a checkpoint of size %d is for the log %r, not this one (%r)"
                        % (checkpoint.size, checkpoint.origin, expected)
                    )
    except UsageError as e:
        print("verify_log.py: %s" % e, file=sys.stderr)
        print(USAGE, file=sys.stderr)
        return 2

    if walk.chain is not None:
        next_seq, head = walk.chain
        last_seq = next_seq - 1
        events = next_seq - walk.first_seq
    else:
        head, last_seq, events = ZERO_HASH, 0, 0

    # Section 15: a stored hash of the tree that is not the records', then the checkpoints,
    # once nothing else failed.
    if error is None:
        error = walk.tree.mismatch
    tree_root, checks = None, []
    if error is None:
        tree_root = walk.tree.root()
        checks, error = walk.check_checkpoints(checkpoints, last_seq)

    # Section 16.4: the seals, checked during the walk; with an epoch known to be sealed, a log
    # whose last seal is older (or that has none) lost seals from its end.
    seals = None
    if walk.seal is not None:
        seals = walk.seal.report(walk.first_seq, last_seq, events)
        if error is None and args.expect_epoch is not None:
            error = walk.seal.missing(args.expect_epoch, *(walk.last_end or (directory, 0)))

    # Section 11: heads obtained out of band.
    if error is None:
        last_file = os.path.join(directory, segments[-1][1])
        for seq, expected in receipts:
            found = walk.wanted.get(seq)
            if found is None:
                error = Failure(
                    seq,
                    last_file,
                    0,
                    "the log does not reach the receipt's seq %d (its last seq is %d)"
                    % (seq, last_seq),
                )
                break
            chain, path, offset = found
            if chain != expected:
                error = Failure(
                    seq,
                    path,
                    offset,
                    "receipt mismatch: the receipt says chain %s, the log has %s"
                    % (expected.hex(), chain.hex()),
                )
                break

    out = {
        "ok": error is None,
        "events": events,
        "first_seq": walk.first_seq,
        "last_seq": last_seq,
        "head_hash": head.hex(),
        "error": error.as_json() if error else None,
        "segments": len(segments),
        "uncommitted": walk.uncommitted,
        "torn_tail": walk.torn_tail,
        "notes": walk.notes,
        "foreign_files": foreign,
        "tree_root": tree_root.hex() if tree_root is not None else None,
        "checkpoints": checks,
        "seals": seals,
    }
    print(json.dumps(out))
    return 0 if error is None else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
