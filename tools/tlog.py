#!/usr/bin/env python3
"""Independent verifier of transparency-log artifacts, written from the public specifications.

A library, not a command: `import tlog` with tools/ on the path. It checks

* Ed25519 signatures (RFC 8032), in pure Python integers;
* signed notes and verifier keys (https://c2sp.org/signed-note);
* checkpoint texts (https://c2sp.org/tlog-checkpoint);
* Ed25519 cosignatures, cosignature/v1 (https://c2sp.org/tlog-cosignature);
* Merkle inclusion and consistency proofs (RFC 9162 section 2.1, the RFC 6962 tree).

Formats, byte by byte:

    verifier key   <name>+<key id: 8 lowercase hex digits>+<base64(type || public key)>
    key id         SHA-256(name || 0x0A || type || public key)[:4], read big-endian
    type           0x01 Ed25519 note signature; 0x04 Ed25519 cosignature/v1
    signed note    <text, ending in a newline> <newline> <one or more signature lines>
    signature line U+2014 (em dash) U+0020 <name> U+0020 <base64(key id || signature)> U+000A
    checkpoint     <origin> LF <tree size, decimal, no leading zero> LF <base64(root hash)> LF
                   [<extension line> LF ...]
    cosignature    base64(key id (4) || timestamp (u64 big-endian, 8) || Ed25519 signature (64))
                   over b"cosignature/v1\\ntime <timestamp, decimal>\\n" || checkpoint text

Every base64 here is standard base64 with padding (RFC 4648 section 4), and must be in its one
canonical form: the encoding of the decoded bytes gives back the same text.

The Merkle tree follows RFC 6962 hashing with the auditring conventions: the tree's leaf for the
record with sequence number `seq` is at index `seq - 1`, and its hash is
SHA-256(0x00 || the record's 32-byte leaf field) (docs/FORMAT.md section 7 defines the leaf
field); an interior node is SHA-256(0x01 || left || right); the empty tree's root is SHA-256 of
nothing.

A verification failure raises a subclass of TlogError whose message says what failed. A bad
argument from the caller (a wrong type, an index outside a list the caller built) raises
TypeError or ValueError.

The signing functions (ed25519_sign, signature_line, cosignature_line, sign_note) exist for the
tests, which build tampered artifacts with them. Standard library only.
"""

import base64
import hashlib
import re
from collections import namedtuple

# Signed-note signature types (c2sp.org/signed-note, "Signature types").
SIG_ED25519 = 0x01
SIG_COSIGNATURE_V1 = 0x04
SIG_TYPE_NAMES = {
    SIG_ED25519: "Ed25519 (0x01)",
    SIG_COSIGNATURE_V1: "Ed25519 cosignature/v1 (0x04)",
}

SIG_PREFIX = "\u2014 "  # em dash, space
# Go's golang.org/x/mod/sumdb/note refuses a note with more; the spec asks for at least 16.
MAX_NOTE_SIGNATURES = 100
KEY_ID_LEN = 4
ED25519_KEY_LEN = 32
ED25519_SIG_LEN = 64
TIMESTAMP_LEN = 8
COSIGNATURE_LEN = TIMESTAMP_LEN + ED25519_SIG_LEN  # after the key id
MAX_TIMESTAMP = (1 << 63) - 1  # tlog-cosignature: "It MUST NOT exceed 2^63 - 1"
U64_MAX = (1 << 64) - 1

HASH_LEN = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

# The characters Go's unicode.IsSpace accepts (Unicode White_Space); a key name holds none.
_SPACES = frozenset(
    chr(c)
    for c in (0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20, 0x85, 0xA0, 0x1680)
    + tuple(range(0x2000, 0x200B))
    + (0x2028, 0x2029, 0x202F, 0x205F, 0x3000)
)
# ASCII control characters other than newline: a signed note holds none.
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")
_DECIMAL = re.compile(r"(?:0|[1-9][0-9]*)\Z")
_KEY_ID_HEX = re.compile(r"[0-9a-f]{8}\Z")


class TlogError(Exception):
    """A transparency-log artifact failed to verify; the message says what failed."""


class MalformedNoteError(TlogError):
    """A signed note is not of the signed-note format."""


class VerifierKeyError(TlogError):
    """A verifier key is not of the verifier-key format, or cannot serve as asked."""


class InvalidSignatureError(TlogError):
    """A signature by a trusted key (its name and key id match) does not verify."""

    def __init__(self, name, key_id, reason):
        super().__init__(reason)
        self.name = name
        self.key_id = key_id


class UnverifiedNoteError(TlogError):
    """A well-formed note carries no signature by a trusted key.

    `text` is the note's text and `unknown` the names of its signatures, none of which can be
    trusted: the text must be ignored."""

    def __init__(self, text, unknown, reason):
        super().__init__(reason)
        self.text = text
        self.unknown = unknown


class MalformedCheckpointError(TlogError):
    """A note text is not a checkpoint."""


class InsufficientCosignaturesError(TlogError):
    """Fewer distinct witnesses than required cosigned a checkpoint."""

    def __init__(self, cosignatures, required, reason):
        super().__init__(reason)
        self.cosignatures = cosignatures
        self.required = required


class ProofError(TlogError):
    """A Merkle proof does not verify."""


class InclusionProofError(ProofError):
    """An inclusion proof does not verify (RFC 9162 section 2.1.3.2)."""


class ConsistencyProofError(ProofError):
    """A consistency proof does not verify (RFC 9162 section 2.1.4.2)."""


def sha256(*parts):
    h = hashlib.sha256()
    for p in parts:
        h.update(p)
    return h.digest()


def _as_bytes(value, what):
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise TypeError("%s must be bytes, not %s" % (what, type(value).__name__))


def _as_int(value, what):
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("%s must be an int, not %s" % (what, type(value).__name__))
    return value


# ------------------------------------------------------------------------------------------------
# Ed25519, RFC 8032 section 5.1, after the Python illustration of its section 6.
#
# Points are (X, Y, Z, T) in extended coordinates: x = X/Z, y = Y/Z, x*y = T/Z.

_P = 2**255 - 19
_L = 2**252 + 27742317777372353535851937790883648493  # the group order, "L" in section 5.1
_D = -121665 * pow(121666, _P - 2, _P) % _P
_SQRT_M1 = pow(2, (_P - 1) // 4, _P)
_IDENTITY = (0, 1, 1, 0)


def _inv(x):
    return pow(x, _P - 2, _P)


def _point_add(p, q):
    """Section 5.1.4, "add-2008-hwcd-3"; complete, so it also doubles."""
    a = (p[1] - p[0]) * (q[1] - q[0]) % _P
    b = (p[1] + p[0]) * (q[1] + q[0]) % _P
    c = 2 * p[3] * q[3] * _D % _P
    d = 2 * p[2] * q[2] % _P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % _P, g * h % _P, f * g % _P, e * h % _P)


def _point_mul(s, p):
    q = _IDENTITY
    while s > 0:
        if s & 1:
            q = _point_add(q, p)
        p = _point_add(p, p)
        s >>= 1
    return q


def _point_neg(p):
    return (-p[0] % _P, p[1], p[2], -p[3] % _P)


def _recover_x(y, sign):
    """Section 5.1.3 steps 2-4: the x of the point with this y and sign bit, or None."""
    if y >= _P:
        return None
    x2 = (y * y - 1) * _inv(_D * y * y + 1) % _P
    if x2 == 0:
        return None if sign else 0
    x = pow(x2, (_P + 3) // 8, _P)
    if (x * x - x2) % _P != 0:
        x = x * _SQRT_M1 % _P
    if (x * x - x2) % _P != 0:
        return None
    if (x & 1) != sign:
        x = _P - x
    return x


def _point_compress(p):
    """Section 5.1.2: the one 32-byte encoding of a point."""
    zinv = _inv(p[2])
    x = p[0] * zinv % _P
    y = p[1] * zinv % _P
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


def _point_decompress(s):
    """Section 5.1.3, strict: None for an encoding with y >= p, with x = 0 and the sign bit
    set, or of no point of the curve."""
    if len(s) != 32:
        return None
    y = int.from_bytes(s, "little")
    sign = y >> 255
    y &= (1 << 255) - 1
    x = _recover_x(y, sign)
    if x is None:
        return None
    return (x, y, 1, x * y % _P)


_B_Y = 4 * _inv(5) % _P
_B = (_recover_x(_B_Y, 0), _B_Y, 1, _recover_x(_B_Y, 0) * _B_Y % _P)
_IDENTITY_ENCODING = _point_compress(_IDENTITY)


def _secret_expand(seed):
    """Section 5.1.5: the clamped scalar and the prefix of a 32-byte private key."""
    seed = _as_bytes(seed, "seed")
    if len(seed) != 32:
        raise ValueError("an Ed25519 private key (seed) is 32 bytes, not %d" % len(seed))
    h = hashlib.sha512(seed).digest()
    a = int.from_bytes(h[:32], "little")
    a &= (1 << 254) - 8
    a |= 1 << 254
    return a, h[32:]


def ed25519_public_key(seed):
    """The 32-byte public key of a 32-byte Ed25519 private key (RFC 8032 section 5.1.5)."""
    a, _ = _secret_expand(seed)
    return _point_compress(_point_mul(a, _B))


def ed25519_sign(seed, message):
    """The 64-byte Ed25519 signature of `message` by the private key `seed` (RFC 8032 section
    5.1.6). For building test artifacts: nothing here is constant-time."""
    a, prefix = _secret_expand(seed)
    message = _as_bytes(message, "message")
    public = _point_compress(_point_mul(a, _B))
    r = int.from_bytes(hashlib.sha512(prefix + message).digest(), "little") % _L
    r_enc = _point_compress(_point_mul(r, _B))
    k = int.from_bytes(hashlib.sha512(r_enc + public + message).digest(), "little") % _L
    s = (r + k * a) % _L
    return r_enc + s.to_bytes(32, "little")


def ed25519_verify(public_key, message, signature):
    """Whether `signature` is a valid Ed25519 signature of `message` by `public_key`.

    RFC 8032 section 5.1.7 with the cofactorless equation [S]B = R + [k]A, where
    k = SHA-512(R || A || message) mod L over the encodings as given. This is the check of
    ed25519-dalek's `VerifyingKey::verify` (not `verify_strict`), which the Rust side uses:
    S must be below L (no reduction, no "high bits only" test); [S]B - [k]A is computed and its
    encoding compared with the 32 bytes of R, so an R that is not the canonical encoding of a
    point never verifies. Small-order keys and R are not refused, as in dalek's `verify`.

    One difference, stricter than dalek: the public key is decoded as RFC 8032 section 5.1.3
    says, refusing an encoding with y >= p or with x = 0 and the sign bit set; dalek reduces y
    mod p and ignores that sign bit. Key generation never produces such an encoding.

    Returns False for a key or signature of the wrong length or a key that is no point.
    """
    public_key = _as_bytes(public_key, "public key")
    message = _as_bytes(message, "message")
    signature = _as_bytes(signature, "signature")
    if len(public_key) != ED25519_KEY_LEN or len(signature) != ED25519_SIG_LEN:
        return False
    a = _point_decompress(public_key)
    if a is None:
        return False
    r_enc = signature[:32]
    s = int.from_bytes(signature[32:], "little")
    if s >= _L:
        return False
    k = int.from_bytes(hashlib.sha512(r_enc + public_key + message).digest(), "little") % _L
    r_check = _point_add(_point_mul(s, _B), _point_neg(_point_mul(k, a)))
    return _point_compress(r_check) == r_enc


def _is_small_order(point):
    return _point_compress(_point_mul(8, point)) == _IDENTITY_ENCODING


# ------------------------------------------------------------------------------------------------
# Base64 and key names.


def b64encode(data):
    return base64.b64encode(data).decode("ascii")


def b64decode(text, what, error=TlogError):
    """Standard base64 with padding, in its canonical form only (the encoding of the result
    gives back `text`): no whitespace, no missing or extra padding, no stray bits."""
    try:
        raw = base64.b64decode(text, validate=True)
    except ValueError:
        raw = None
    if raw is None or b64encode(raw) != text:
        raise error("%s is not canonical standard base64: %r" % (what, _clip(text)))
    return raw


def _clip(text, n=80):
    return text if len(text) <= n else text[:n] + "..."


def is_valid_key_name(name):
    """signed-note: "Key names MUST be non-empty and MUST NOT contain any Unicode spaces or plus
    (U+002B) characters"; it must also be valid UTF-8."""
    if not isinstance(name, str) or name == "" or "+" in name:
        return False
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return not any(c in _SPACES for c in name)


def key_id(name, sig_type, public_key):
    """SHA-256(name || 0x0A || sig_type || public_key)[:4] as a big-endian int (signed-note,
    "key ID"; tlog-cosignature uses 0x04 for the type)."""
    digest = sha256(name.encode("utf-8"), b"\n", bytes([sig_type]), _as_bytes(public_key, "key"))
    return int.from_bytes(digest[:KEY_ID_LEN], "big")


# ------------------------------------------------------------------------------------------------
# Verifier keys (signed-note, "Verifier keys").

VerifierKey = namedtuple("VerifierKey", "name key_id sig_type public_key")
VerifierKey.__doc__ = """A parsed verifier key: the name, the key id (int), the signature type
byte and the 32-byte Ed25519 public key."""


def format_verifier_key(name, public_key, sig_type=SIG_ED25519):
    """The verifier key `<name>+<key id hex>+<base64(sig_type || public_key)>`."""
    if not is_valid_key_name(name):
        raise ValueError("key name %r is empty or holds a space or '+'" % (name,))
    public_key = _as_bytes(public_key, "public key")
    return "%s+%08x+%s" % (
        name,
        key_id(name, sig_type, public_key),
        b64encode(bytes([sig_type]) + public_key),
    )


def parse_verifier_key(vkey, sig_type=None):
    """Parse `<name>+<8 lowercase hex digits>+<base64(type || public key)>`.

    The type must be 0x01 (Ed25519) or 0x04 (Ed25519 cosignature/v1), and `sig_type` when given;
    the key a 32-byte encoding of a point of the curve (RFC 8032 section 5.1.3) and not of small
    order (such a key would accept forged signatures); the key id the one computed from the name,
    the type and the key. Raises VerifierKeyError saying which part fails.

    Stricter than Go's note.NewVerifier in three ways, none of which affects a key that a
    generator wrote: the key id must be lowercase, the base64 canonical, and the key a point not
    of small order (Go accepts any 32 bytes, which then verify nothing).
    """
    if not isinstance(vkey, str):
        raise TypeError("a verifier key must be a str, not %s" % type(vkey).__name__)
    parts = vkey.split("+", 2)
    if len(parts) != 3:
        raise VerifierKeyError(
            "verifier key %r is not <name>+<key id>+<base64 key>: it has %d '+'"
            % (_clip(vkey), len(parts) - 1)
        )
    name, id_hex, key64 = parts
    if not is_valid_key_name(name):
        raise VerifierKeyError("verifier key %r: the name is empty or holds a space" % _clip(vkey))
    if not _KEY_ID_HEX.match(id_hex):
        raise VerifierKeyError(
            "verifier key %r: the key id %r is not 8 lowercase hex digits" % (_clip(vkey), id_hex)
        )
    raw = b64decode(key64, "verifier key %r: the key" % _clip(vkey), VerifierKeyError)
    if len(raw) == 0:
        raise VerifierKeyError("verifier key %r: the key is empty" % _clip(vkey))
    kind, public = raw[0], raw[1:]
    if kind not in SIG_TYPE_NAMES:
        raise VerifierKeyError(
            "verifier key %r: signature type 0x%02x is not supported (0x01 Ed25519, 0x04 Ed25519 "
            "cosignature/v1)" % (_clip(vkey), kind)
        )
    if sig_type is not None and kind != sig_type:
        raise VerifierKeyError(
            "verifier key %r is of type %s where %s is needed"
            % (_clip(vkey), SIG_TYPE_NAMES[kind], SIG_TYPE_NAMES.get(sig_type, "0x%02x" % sig_type))
        )
    if len(public) != ED25519_KEY_LEN:
        raise VerifierKeyError(
            "verifier key %r: an Ed25519 public key is 32 bytes, this one %d"
            % (_clip(vkey), len(public))
        )
    want = key_id(name, kind, public)
    if int(id_hex, 16) != want:
        raise VerifierKeyError(
            "verifier key %r: the key id is %s, but SHA-256(name || 0x0A || 0x%02x || key) "
            "starts with %08x" % (_clip(vkey), id_hex, kind, want)
        )
    point = _point_decompress(public)
    if point is None:
        raise VerifierKeyError(
            "verifier key %r: the public key is not the encoding of a point of the curve"
            % _clip(vkey)
        )
    if _is_small_order(point):
        raise VerifierKeyError("verifier key %r: the public key is of small order" % _clip(vkey))
    return VerifierKey(name, want, kind, public)


def _key_table(keys, sig_type, what):
    """{(name, key id): [distinct VerifierKey]} from vkey strings or VerifierKeys."""
    if isinstance(keys, (str, bytes)):
        raise TypeError(
            "%s must be a list of verifier keys, not one %s" % (what, type(keys).__name__)
        )
    table = {}
    for k in keys:
        if not isinstance(k, VerifierKey):
            k = parse_verifier_key(k)
        if k.sig_type != sig_type:
            raise VerifierKeyError(
                "%s: the key %s+%08x is of type %s where %s is needed"
                % (
                    what,
                    k.name,
                    k.key_id,
                    SIG_TYPE_NAMES.get(k.sig_type, "0x%02x" % k.sig_type),
                    SIG_TYPE_NAMES[sig_type],
                )
            )
        entry = table.setdefault((k.name, k.key_id), [])
        if k not in entry:
            entry.append(k)
    return table


def _lookup(table, sig, what):
    """The one trusted key with this signature's name and key id, or None."""
    found = table.get((sig.name, sig.key_id))
    if not found:
        return None
    if len(found) > 1:
        raise VerifierKeyError(
            "ambiguous key %s+%08x: %s hold %d different keys with that name and key id"
            % (sig.name, sig.key_id, what, len(found))
        )
    return found[0]


# ------------------------------------------------------------------------------------------------
# Signed notes (c2sp.org/signed-note, "Format" and "Signatures").

NoteSignature = namedtuple("NoteSignature", "name key_id signature line")
NoteSignature.__doc__ = """One signature line: the key name, the key id (int), the signature
bytes after the key id, and the line without its newline."""
Note = namedtuple("Note", "text signatures")
Note.__doc__ = """A parsed, unverified note: its text (with the final newline, without the blank
line) and its signature lines, in order."""


def parse_note(signed):
    """Parse a signed note (str, or bytes in UTF-8) without verifying anything.

    Raises MalformedNoteError when: the note is not valid UTF-8; it holds an ASCII control
    character other than newline; no blank line separates the text from the signatures (the
    last blank line does); nothing follows it; the last line does not end in a newline; there
    are more than 100 signature lines; a signature line does not start with an em dash and a
    space, has a key name that is empty or holds a space or '+', or a signature that is not
    canonical base64 of at least 5 bytes (a 4-byte key id and a signature).
    """
    if isinstance(signed, str):
        text = signed
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as e:
            raise MalformedNoteError("the note is not valid UTF-8: %s" % e.reason) from None
    elif isinstance(signed, (bytes, bytearray, memoryview)):
        try:
            text = bytes(signed).decode("utf-8")
        except UnicodeDecodeError as e:
            raise MalformedNoteError("the note is not valid UTF-8 at byte %d" % e.start) from None
    else:
        raise TypeError("a signed note must be str or bytes, not %s" % type(signed).__name__)
    bad = _CONTROL.search(text)
    if bad:
        raise MalformedNoteError(
            "the note holds the control character U+%04X at character %d (only newline is "
            "allowed)" % (ord(bad.group()), bad.start())
        )
    split = text.rfind("\n\n")
    if split < 0:
        raise MalformedNoteError("no blank line separates the note text from its signatures")
    body, block = text[: split + 1], text[split + 2 :]
    if block == "":
        raise MalformedNoteError("the note has no signature line after its last blank line")
    if not block.endswith("\n"):
        raise MalformedNoteError("the note's last signature line does not end in a newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_NOTE_SIGNATURES:
        raise MalformedNoteError(
            "the note has %d signature lines, more than the %d accepted"
            % (len(lines), MAX_NOTE_SIGNATURES)
        )
    signatures = []
    for n, line in enumerate(lines, 1):
        if not line.startswith(SIG_PREFIX):
            raise MalformedNoteError(
                "signature line %d does not start with an em dash (U+2014) and a space: %r"
                % (n, _clip(line))
            )
        name, _, b64 = line[len(SIG_PREFIX) :].partition(" ")
        if not is_valid_key_name(name):
            raise MalformedNoteError(
                "signature line %d: the key name %r is empty or holds a space or '+'"
                % (n, _clip(name))
            )
        raw = b64decode(b64, "signature line %d: the signature" % n, MalformedNoteError)
        if len(raw) < KEY_ID_LEN + 1:
            raise MalformedNoteError(
                "signature line %d: the signature is %d bytes, less than a 4-byte key id and a "
                "signature" % (n, len(raw))
            )
        signatures.append(
            NoteSignature(name, int.from_bytes(raw[:KEY_ID_LEN], "big"), raw[KEY_ID_LEN:], line)
        )
    return Note(body, signatures)


def open_note(signed, trusted_keys):
    """Verify a signed note against trusted Ed25519 verifier keys (type 0x01).

    Returns (text, verified_names, unknown_signature_names): the note text; the names of the
    trusted keys whose signatures verified, in order, each once; the names on signatures whose
    (name, key id) is no trusted key's, each distinct line once. As the spec and Go's note.Open
    do, such unknown signatures are ignored, even when they share a name or a key id (not both)
    with a trusted key.

    Every signature whose name and key id match a trusted key is verified over the text,
    repeated lines included (Go skips a second signature by one key; the spec says every such
    signature MUST be verified). Raises MalformedNoteError (see parse_note), VerifierKeyError
    for a bad trusted key or two different trusted keys sharing a name and key id that a
    signature names, InvalidSignatureError for a signature by a trusted key that does not
    verify, UnverifiedNoteError when no trusted key signed the note.
    """
    note = parse_note(signed)
    table = _key_table(trusted_keys, SIG_ED25519, "the trusted keys")
    message = note.text.encode("utf-8")
    verified, verified_ids, unknown, unknown_lines = [], set(), [], set()
    for sig in note.signatures:
        key = _lookup(table, sig, "the trusted keys")
        if key is None:
            if sig.line not in unknown_lines:
                unknown_lines.add(sig.line)
                unknown.append(sig.name)
            continue
        if len(sig.signature) != ED25519_SIG_LEN:
            raise InvalidSignatureError(
                sig.name,
                sig.key_id,
                "the signature by %s+%08x is %d bytes after the key id; an Ed25519 signature is "
                "64" % (sig.name, sig.key_id, len(sig.signature)),
            )
        if not ed25519_verify(key.public_key, message, sig.signature):
            raise InvalidSignatureError(
                sig.name,
                sig.key_id,
                "the signature by %s+%08x does not verify over the note text"
                % (sig.name, sig.key_id),
            )
        if (sig.name, sig.key_id) not in verified_ids:
            verified_ids.add((sig.name, sig.key_id))
            verified.append(sig.name)
    if not verified:
        raise UnverifiedNoteError(
            note.text,
            unknown,
            "no trusted key signed the note (its signatures are by: %s)" % ", ".join(unknown),
        )
    return note.text, verified, unknown


# ------------------------------------------------------------------------------------------------
# Checkpoints (c2sp.org/tlog-checkpoint, "Note text").

Checkpoint = namedtuple("Checkpoint", "origin size root_hash extensions")
Checkpoint.__doc__ = """A parsed checkpoint text: the origin (str), the tree size (int), the
32-byte root hash and the extension lines (a tuple of str, without newlines)."""


def parse_checkpoint(text):
    """Parse a checkpoint text (a note's text, ending in a newline).

    Raises MalformedCheckpointError when: the text does not end in a newline or holds an ASCII
    control character other than newline; it has fewer than three lines; a line is empty (the
    origin and every extension line must not be); the tree size is not ASCII decimal without a
    leading zero ("0" for the empty tree) or exceeds 2^64 - 1; the root hash is not canonical
    standard base64 of 32 bytes.
    """
    if not isinstance(text, str):
        raise TypeError("a checkpoint text must be a str, not %s" % type(text).__name__)
    if not text.endswith("\n"):
        raise MalformedCheckpointError("the checkpoint text does not end in a newline")
    bad = _CONTROL.search(text)
    if bad:
        raise MalformedCheckpointError(
            "the checkpoint holds the control character U+%04X at character %d"
            % (ord(bad.group()), bad.start())
        )
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise MalformedCheckpointError(
            "the checkpoint has %d lines; it needs an origin, a tree size and a root hash"
            % len(lines)
        )
    for n, line in enumerate(lines, 1):
        if line == "":
            raise MalformedCheckpointError("line %d of the checkpoint is empty" % n)
    origin, size_text, root_text = lines[:3]
    if not _DECIMAL.match(size_text):
        raise MalformedCheckpointError(
            "the tree size %r is not decimal digits without a leading zero" % _clip(size_text)
        )
    size = int(size_text)
    if size > U64_MAX:
        raise MalformedCheckpointError("the tree size %s exceeds 2^64 - 1" % size_text)
    root = b64decode(root_text, "the root hash", MalformedCheckpointError)
    if len(root) != HASH_LEN:
        raise MalformedCheckpointError("the root hash is %d bytes, not 32" % len(root))
    return Checkpoint(origin, size, root, tuple(lines[3:]))


def open_checkpoint(signed, log_keys, origin=None):
    """open_note, then parse_checkpoint on its text, then (when `origin` is given) check the
    origin line. Returns (Checkpoint, verified_names)."""
    text, verified, _ = open_note(signed, log_keys)
    checkpoint = parse_checkpoint(text)
    if origin is not None and checkpoint.origin != origin:
        raise MalformedCheckpointError(
            "the checkpoint's origin is %r, not %r" % (_clip(checkpoint.origin), origin)
        )
    return checkpoint, verified


# ------------------------------------------------------------------------------------------------
# Cosignatures (c2sp.org/tlog-cosignature, Ed25519 "cosignature/v1").

Cosignature = namedtuple("Cosignature", "name key_id timestamp")
Cosignature.__doc__ = """A verified cosignature: the witness's key name, key id and the
timestamp (POSIX seconds) it signed."""


def cosignature_message(checkpoint_text, timestamp):
    """b"cosignature/v1\\ntime <timestamp>\\n" followed by the whole checkpoint text (with its
    final newline, without signature lines); the timestamp in ASCII decimal without leading
    zeros, at most 2^63 - 1."""
    timestamp = _as_int(timestamp, "timestamp")
    if not 0 <= timestamp <= MAX_TIMESTAMP:
        raise ValueError("a cosignature timestamp is in [0, 2^63 - 1], not %d" % timestamp)
    return b"cosignature/v1\ntime %d\n" % timestamp + checkpoint_text.encode("utf-8")


def verify_cosignatures(signed_note, witness_keys, k):
    """Verify the cosignature/v1 signatures of a checkpoint and require `k` distinct witnesses.

    `witness_keys` are verifier keys of type 0x04 (key id SHA-256(name || 0x0A || 0x04 ||
    key)[:4]). A signature line whose name and key id match a witness key must decode to the key
    id, an 8-byte big-endian timestamp of at most 2^63 - 1 and a 64-byte Ed25519 signature of
    cosignature_message(text, timestamp); other signature lines (the log's own, unknown
    witnesses) are ignored. The note text must be a checkpoint (parse_checkpoint).

    Witnesses are counted by public key: the same witness signing twice, or one public key
    listed under two names, counts once (the Ed25519 cosignature does not commit to the name,
    and the spec forbids reusing a public key across cosigners).

    Returns the verified cosignatures, one per (name, key id), in note order. Raises
    MalformedNoteError, MalformedCheckpointError, VerifierKeyError, InvalidSignatureError (a
    witness's cosignature that is malformed or does not verify) or
    InsufficientCosignaturesError (fewer than `k` distinct witnesses).
    """
    k = _as_int(k, "k")
    if k < 0:
        raise ValueError("k is a number of witnesses, not %d" % k)
    note = parse_note(signed_note)
    parse_checkpoint(note.text)
    table = _key_table(witness_keys, SIG_COSIGNATURE_V1, "the witness keys")
    found, seen_ids, seen_keys = [], set(), set()
    for sig in note.signatures:
        key = _lookup(table, sig, "the witness keys")
        if key is None:
            continue
        who = "%s+%08x" % (sig.name, sig.key_id)
        if len(sig.signature) != COSIGNATURE_LEN:
            raise InvalidSignatureError(
                sig.name,
                sig.key_id,
                "the cosignature by %s is %d bytes after the key id; a cosignature/v1 is 72 (an "
                "8-byte timestamp and a 64-byte Ed25519 signature)" % (who, len(sig.signature)),
            )
        timestamp = int.from_bytes(sig.signature[:TIMESTAMP_LEN], "big")
        if timestamp > MAX_TIMESTAMP:
            raise InvalidSignatureError(
                sig.name,
                sig.key_id,
                "the cosignature by %s has the timestamp %d, above 2^63 - 1" % (who, timestamp),
            )
        message = cosignature_message(note.text, timestamp)
        if not ed25519_verify(key.public_key, message, sig.signature[TIMESTAMP_LEN:]):
            raise InvalidSignatureError(
                sig.name,
                sig.key_id,
                "the cosignature by %s (time %d) does not verify over the checkpoint"
                % (who, timestamp),
            )
        if (sig.name, sig.key_id) not in seen_ids:
            seen_ids.add((sig.name, sig.key_id))
            found.append(Cosignature(sig.name, sig.key_id, timestamp))
        seen_keys.add(key.public_key)
    if len(seen_keys) < k:
        raise InsufficientCosignaturesError(
            found,
            k,
            "%d distinct witness%s cosigned the checkpoint (%s); %d required"
            % (
                len(seen_keys),
                "" if len(seen_keys) == 1 else "es",
                ", ".join(c.name for c in found) or "none",
                k,
            ),
        )
    return found


# ------------------------------------------------------------------------------------------------
# Building notes, for the tests.


def signature_line(name, seed, text):
    """The line `— <name> <base64(key id || Ed25519 signature of text)>` with its newline, the
    key id of type 0x01 (signed-note, "Ed25519 signatures")."""
    if not is_valid_key_name(name):
        raise ValueError("key name %r is empty or holds a space or '+'" % (name,))
    kid = key_id(name, SIG_ED25519, ed25519_public_key(seed))
    sig = ed25519_sign(seed, text.encode("utf-8"))
    return "%s%s %s\n" % (SIG_PREFIX, name, b64encode(kid.to_bytes(4, "big") + sig))


def cosignature_line(name, seed, checkpoint_text, timestamp):
    """The line `— <name> <base64(key id || u64 timestamp || Ed25519 signature)>` with its
    newline, the key id of type 0x04, signing cosignature_message(checkpoint_text, timestamp)."""
    if not is_valid_key_name(name):
        raise ValueError("key name %r is empty or holds a space or '+'" % (name,))
    kid = key_id(name, SIG_COSIGNATURE_V1, ed25519_public_key(seed))
    sig = ed25519_sign(seed, cosignature_message(checkpoint_text, timestamp))
    raw = kid.to_bytes(4, "big") + timestamp.to_bytes(8, "big") + sig
    return "%s%s %s\n" % (SIG_PREFIX, name, b64encode(raw))


def sign_note(text, signers):
    """The signed note of `text` (ending in a newline) by each (name, seed) in `signers`."""
    if not isinstance(text, str) or not text.endswith("\n"):
        raise ValueError("a note text is a str ending in a newline")
    return text + "\n" + "".join(signature_line(name, seed, text) for name, seed in signers)


# ------------------------------------------------------------------------------------------------
# Merkle trees (RFC 9162 section 2.1, RFC 6962 hashing).


def rfc6962_leaf_hash(data):
    """SHA-256(0x00 || data): the hash of a leaf holding `data` (any length)."""
    return sha256(b"\x00", _as_bytes(data, "leaf data"))


def leaf_hash(record_leaf):
    """The tree's leaf hash of an auditring record: SHA-256(0x00 || leaf), where `leaf` is the
    record's 32-byte leaf field. The record with sequence number seq is leaf seq - 1."""
    record_leaf = _as_bytes(record_leaf, "record leaf")
    if len(record_leaf) != HASH_LEN:
        raise ValueError("a record's leaf field is 32 bytes, not %d" % len(record_leaf))
    return rfc6962_leaf_hash(record_leaf)


def node_hash(left, right):
    """SHA-256(0x01 || left || right)."""
    return sha256(b"\x01", left, right)


def _split(n):
    """The largest power of two smaller than n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def _hash_list(hashes, what):
    if isinstance(hashes, (bytes, bytearray, memoryview, str)):
        raise TypeError(
            "%s must be a list of 32-byte hashes, not one %s" % (what, type(hashes).__name__)
        )
    out = []
    for i, h in enumerate(hashes):
        h = _as_bytes(h, "%s[%d]" % (what, i))
        if len(h) != HASH_LEN:
            raise ValueError("%s[%d] is %d bytes, not 32" % (what, i, len(h)))
        out.append(h)
    return out


def _mth(h, lo, hi):
    """MTH(D[lo:hi]), RFC 9162 section 2.1.1."""
    n = hi - lo
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return h[lo]
    k = _split(n)
    return node_hash(_mth(h, lo, lo + k), _mth(h, lo + k, hi))


def root_from_leaf_hashes(leaf_hashes):
    """The Merkle tree hash of the leaves with these (ready) leaf hashes: MTH of RFC 9162 section
    2.1.1, computed as it is defined. SHA-256 of nothing for no leaves."""
    h = _hash_list(leaf_hashes, "leaf_hashes")
    return _mth(h, 0, len(h))


def _path(h, m, lo, hi):
    """PATH(m, D[lo:hi]), RFC 9162 section 2.1.3.1."""
    n = hi - lo
    if n == 1:
        return []
    k = _split(n)
    if m < k:
        return _path(h, m, lo, lo + k) + [_mth(h, lo + k, hi)]
    return _path(h, m - k, lo + k, hi) + [_mth(h, lo, lo + k)]


def inclusion_proof(leaf_hashes, index):
    """The inclusion proof of leaf `index` in the tree of these leaf hashes: PATH(index, D[n]) of
    RFC 9162 section 2.1.3.1, computed as it is defined (a reference, not fast)."""
    h = _hash_list(leaf_hashes, "leaf_hashes")
    index = _as_int(index, "index")
    if not 0 <= index < len(h):
        raise ValueError("leaf index %d is outside a tree of %d leaves" % (index, len(h)))
    return _path(h, index, 0, len(h))


def _subproof(h, m, lo, hi, b):
    """SUBPROOF(m, D[lo:hi], b), RFC 9162 section 2.1.4.1."""
    n = hi - lo
    if m == n:
        return [] if b else [_mth(h, lo, hi)]
    k = _split(n)
    if m <= k:
        return _subproof(h, m, lo, lo + k, b) + [_mth(h, lo + k, hi)]
    return _subproof(h, m - k, lo + k, hi, False) + [_mth(h, lo, lo + k)]


def consistency_proof(leaf_hashes, old_size):
    """The consistency proof from the tree of the first `old_size` leaves to the tree of all of
    them: PROOF(old_size, D[n]) of RFC 9162 section 2.1.4.1, computed as it is defined. Empty when
    old_size is n (as PROOF gives) or 0 (which PROOF leaves undefined; verify_consistency accepts
    an empty proof there)."""
    h = _hash_list(leaf_hashes, "leaf_hashes")
    old_size = _as_int(old_size, "old_size")
    if not 0 <= old_size <= len(h):
        raise ValueError("old size %d is outside [0, %d]" % (old_size, len(h)))
    if old_size == 0:
        return []
    return _subproof(h, old_size, 0, len(h), True)


def inclusion_proof_len(index, size):
    """How many hashes an inclusion proof of leaf `index` in a tree of `size` leaves holds."""
    inner = (index ^ (size - 1)).bit_length()
    return inner + bin(index >> inner).count("1")


def consistency_proof_len(old_size, new_size):
    """How many hashes a consistency proof from `old_size` to `new_size` leaves holds, for
    0 < old_size < new_size."""
    shift = (old_size & -old_size).bit_length() - 1
    first = 0 if old_size == 1 << shift else 1
    return first + inclusion_proof_len(old_size - 1, new_size) - shift


def _check_hash(value, what, error):
    value = _as_bytes(value, what)
    if len(value) != HASH_LEN:
        raise error("%s is %d bytes, not 32" % (what, len(value)))
    return value


def _check_proof(proof_hashes, error):
    if isinstance(proof_hashes, (bytes, bytearray, memoryview, str)):
        raise TypeError(
            "a proof is a list of 32-byte hashes, not one %s" % type(proof_hashes).__name__
        )
    return [_check_hash(p, "proof hash %d" % i, error) for i, p in enumerate(proof_hashes)]


def verify_inclusion(leaf_hash, index, size, proof_hashes, root):
    """Check that the leaf with hash `leaf_hash` is leaf `index` of the tree of `size` leaves
    whose root is `root`, with the algorithm of RFC 9162 section 2.1.3.2 step by step. For an
    auditring record, index is seq - 1 and leaf_hash is leaf_hash(record's leaf field).

    Returns None; raises InclusionProofError when: a hash is not 32 bytes; index is not below
    size; the proof holds more or fewer hashes than this index and size need; the root it leads
    to is not `root`.
    """
    err = InclusionProofError
    leaf_hash = _check_hash(leaf_hash, "the leaf hash", err)
    root = _check_hash(root, "the root", err)
    proof = _check_proof(proof_hashes, err)
    index = _as_int(index, "index")
    size = _as_int(size, "size")
    if not 0 <= index < size:
        raise err("leaf index %d is not in a tree of %d leaves" % (index, size))
    need = inclusion_proof_len(index, size)
    # 2. fn = leaf_index, sn = tree_size - 1; 3. r = hash.
    fn, sn, r = index, size - 1, leaf_hash
    # 4. For each value p in the inclusion_path array:
    for p in proof:
        # a. If sn is 0, stop and fail.
        if sn == 0:
            raise err(
                "the proof has %d hashes; leaf %d of a tree of %d leaves needs %d"
                % (len(proof), index, size, need)
            )
        # b. If LSB(fn) is set, or fn is equal to sn:
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            # If LSB(fn) is not set, right-shift fn and sn until LSB(fn) is set or fn is 0.
            while fn != 0 and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        # c. Right-shift both fn and sn one time.
        fn >>= 1
        sn >>= 1
    # 5. sn must be 0 and r the root.
    if sn != 0:
        raise err(
            "the proof has %d hashes; leaf %d of a tree of %d leaves needs %d"
            % (len(proof), index, size, need)
        )
    if r != root:
        raise err(
            "the proof of leaf %d in a tree of %d leaves leads to the root %s, not %s"
            % (index, size, r.hex(), root.hex())
        )


def verify_consistency(old_size, new_size, old_root, new_root, proof_hashes):
    """Check that the tree of `old_size` leaves with root `old_root` is a prefix of the tree of
    `new_size` leaves with root `new_root`, with the algorithm of RFC 9162 section 2.1.4.2 step
    by step.

    Two cases the RFC's algorithm does not cover (it fails an empty proof, and PROOF is defined
    for 0 < old_size < new_size), decided here as Go's transparency-dev/merkle does for the first:
    * old_size == new_size: valid when the proof is empty and the roots are equal;
    * old_size == 0: valid when the proof is empty and old_root is the empty tree's root,
      SHA-256 of nothing (every tree extends the empty tree; Go refuses this case instead).
    Sizes both 0 need both roots to be that root.

    Returns None; raises ConsistencyProofError when: a hash is not 32 bytes; old_size > new_size
    or a size is negative; the proof holds more or fewer hashes than these sizes need (an empty
    one for the cases above); it does not lead to old_root or to new_root.
    """
    err = ConsistencyProofError
    old_root = _check_hash(old_root, "the old root", err)
    new_root = _check_hash(new_root, "the new root", err)
    proof = _check_proof(proof_hashes, err)
    first = _as_int(old_size, "old_size")
    second = _as_int(new_size, "new_size")
    if first < 0 or first > second:
        raise err("the old size %d is not in [0, the new size %d]" % (first, second))
    if first == 0 and old_root != EMPTY_ROOT:
        raise err(
            "the old root %s is not the empty tree's root %s" % (old_root.hex(), EMPTY_ROOT.hex())
        )
    if first == second:
        if proof:
            raise err(
                "the trees are of one size, %d, so the proof must be empty; it has %d hashes"
                % (first, len(proof))
            )
        if old_root != new_root:
            raise err(
                "two trees of %d leaves have different roots, %s and %s"
                % (first, old_root.hex(), new_root.hex())
            )
        return
    if first == 0:
        if proof:
            raise err("from the empty tree the proof must be empty; it has %d hashes" % len(proof))
        return
    need = consistency_proof_len(first, second)
    # 1. If consistency_path is an empty array, stop and fail.
    if not proof:
        raise err(
            "the proof from %d to %d leaves is empty; it needs %d hashes" % (first, second, need)
        )
    path = list(proof)
    # 2. If first is an exact power of 2, prepend first_hash to the consistency_path array.
    if first & (first - 1) == 0:
        path.insert(0, old_root)
    # 3. fn = first - 1, sn = second - 1.
    fn, sn = first - 1, second - 1
    # 4. If LSB(fn) is set, right-shift fn and sn equally until LSB(fn) is not set.
    while fn & 1:
        fn >>= 1
        sn >>= 1
    # 5. fr and sr are the first value in the consistency_path array.
    fr = sr = path[0]
    # 6. For each subsequent value c in the consistency_path array:
    for c in path[1:]:
        # a. If sn is 0, stop and fail.
        if sn == 0:
            raise err(
                "the proof from %d to %d leaves has %d hashes; it needs %d"
                % (first, second, len(proof), need)
            )
        # b. If LSB(fn) is set, or fn is equal to sn:
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            # iii. If LSB(fn) is not set, right-shift until LSB(fn) is set or fn is 0.
            while fn != 0 and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        # c. Right-shift both fn and sn one time.
        fn >>= 1
        sn >>= 1
    # 7. fr must be first_hash, sr second_hash, and sn 0.
    if sn != 0:
        raise err(
            "the proof from %d to %d leaves has %d hashes; it needs %d"
            % (first, second, len(proof), need)
        )
    if fr != old_root:
        raise err(
            "the proof from %d to %d leaves leads to the old root %s, not %s"
            % (first, second, fr.hex(), old_root.hex())
        )
    if sr != new_root:
        raise err(
            "the proof from %d to %d leaves leads to the new root %s, not %s"
            % (first, second, sr.hex(), new_root.hex())
        )
