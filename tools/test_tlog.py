#!/usr/bin/env python3
"""Tests of tools/tlog.py: published vectors, artifacts signed here, and tampering.

Run from the repository root:

    python3 -m unittest tools/test_tlog.py
    python3 tools/test_tlog.py

Sources of the fixed vectors:
* Ed25519: RFC 8032 section 7.1 (TEST 1, 2, 3, 1024, SHA(abc)).
* Signed notes: golang.org/x/mod sumdb/note/note_test.go (PeterNeumann, EnochRoot);
  c2sp.org/signed-note (example.com/foo); transparency-dev/formats log/note_test.go (a
  sum.golang.org checkpoint); c2sp.org/tlog-checkpoint and tlog-cosignature (the
  behind-the-sofa example, whose keys are not published: format only).
* Merkle trees: transparency-dev/merkle testonly/constants.go (leaf inputs, node and root
  hashes) and cmd/proofgen/main.go (inclusion and consistency proofs, their corruptions).

Standard library only.
"""

import base64
import hashlib
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import tlog  # noqa: E402

L = 2**252 + 27742317777372353535851937790883648493
P = 2**255 - 19


def flip(data, index, mask=1):
    out = bytearray(data)
    out[index] ^= mask
    return bytes(out)


def seed_of(name):
    """A fixed private key per name, so failures reproduce."""
    return hashlib.sha256(b"auditring tlog test key " + name.encode()).digest()


# ------------------------------------------------------------------------------------------------
# RFC 8032 section 7.1.

RFC8032_VECTORS = [
    (
        "TEST 1",
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
        "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    ),
    (
        "TEST 2",
        "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
        "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    ),
    (
        "TEST 3",
        "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
        "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
        "af82",
        "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac"
        "18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
    ),
    (
        "TEST 1024",
        "f5e5767cf153319517630f226876b86c8160cc583bc013744c6bf255f5cc0ee5",
        "278117fc144c72340f67d0f2316e8386ceffbf2b2428c9c51fef7c597f1d426e",
        "08b8b2b733424243760fe426a4b54908632110a66c2f6591eabd3345e3e4eb98"
        "fa6e264bf09efe12ee50f8f54e9f77b1e355f6c50544e23fb1433ddf73be84d8"
        "79de7c0046dc4996d9e773f4bc9efe5738829adb26c81b37c93a1b270b20329d"
        "658675fc6ea534e0810a4432826bf58c941efb65d57a338bbd2e26640f89ffbc"
        "1a858efcb8550ee3a5e1998bd177e93a7363c344fe6b199ee5d02e82d522c4fe"
        "ba15452f80288a821a579116ec6dad2b3b310da903401aa62100ab5d1a36553e"
        "06203b33890cc9b832f79ef80560ccb9a39ce767967ed628c6ad573cb116dbef"
        "efd75499da96bd68a8a97b928a8bbc103b6621fcde2beca1231d206be6cd9ec7"
        "aff6f6c94fcd7204ed3455c68c83f4a41da4af2b74ef5c53f1d8ac70bdcb7ed1"
        "85ce81bd84359d44254d95629e9855a94a7c1958d1f8ada5d0532ed8a5aa3fb2"
        "d17ba70eb6248e594e1a2297acbbb39d502f1a8c6eb6f1ce22b3de1a1f40cc24"
        "554119a831a9aad6079cad88425de6bde1a9187ebb6092cf67bf2b13fd65f270"
        "88d78b7e883c8759d2c4f5c65adb7553878ad575f9fad878e80a0c9ba63bcbcc"
        "2732e69485bbc9c90bfbd62481d9089beccf80cfe2df16a2cf65bd92dd597b07"
        "07e0917af48bbb75fed413d238f5555a7a569d80c3414a8d0859dc65a46128ba"
        "b27af87a71314f318c782b23ebfe808b82b0ce26401d2e22f04d83d1255dc51a"
        "ddd3b75a2b1ae0784504df543af8969be3ea7082ff7fc9888c144da2af58429e"
        "c96031dbcad3dad9af0dcbaaaf268cb8fcffead94f3c7ca495e056a9b47acdb7"
        "51fb73e666c6c655ade8297297d07ad1ba5e43f1bca32301651339e22904cc8c"
        "42f58c30c04aafdb038dda0847dd988dcda6f3bfd15c4b4c4525004aa06eeff8"
        "ca61783aacec57fb3d1f92b0fe2fd1a85f6724517b65e614ad6808d6f6ee34df"
        "f7310fdc82aebfd904b01e1dc54b2927094b2db68d6f903b68401adebf5a7e08"
        "d78ff4ef5d63653a65040cf9bfd4aca7984a74d37145986780fc0b16ac451649"
        "de6188a7dbdf191f64b5fc5e2ab47b57f7f7276cd419c17a3ca8e1b939ae49e4"
        "88acba6b965610b5480109c8b17b80e1b7b750dfc7598d5d5011fd2dcc5600a3"
        "2ef5b52a1ecc820e308aa342721aac0943bf6686b64b2579376504ccc493d97e"
        "6aed3fb0f9cd71a43dd497f01f17c0e2cb3797aa2a2f256656168e6c496afc5f"
        "b93246f6b1116398a346f1a641f3b041e989f7914f90cc2c7fff357876e506b5"
        "0d334ba77c225bc307ba537152f3f1610e4eafe595f6d9d90d11faa933a15ef1"
        "369546868a7f3a45a96768d40fd9d03412c091c6315cf4fde7cb68606937380d"
        "b2eaaa707b4c4185c32eddcdd306705e4dc1ffc872eeee475a64dfac86aba41c"
        "0618983f8741c5ef68d3a101e8a3b8cac60c905c15fc910840b94c00a0b9d0",
        "0aab4c900501b3e24d7cdf4663326a3a87df5e4843b2cbdb67cbf6e460fec350"
        "aa5371b1508f9f4528ecea23c436d94b5e8fcd4f681e30a6ac00a9704a188a03",
    ),
    (
        "TEST SHA(abc)",
        "833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42",
        "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf",
        "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
        "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
        "dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b589"
        "09351fc9ac90b3ecfdfbc7c66431e0303dca179c138ac17ad9bef1177331a704",
    ),
]


def vectors():
    """(name, secret, public, message, signature), as bytes after the name."""
    for name, *fields in RFC8032_VECTORS:
        yield (name, *(bytes.fromhex(f) for f in fields))


def encode_y(y, sign=0):
    return (y | (sign << 255)).to_bytes(32, "little")


class Ed25519(unittest.TestCase):
    def test_rfc8032_vectors(self):
        lengths = []
        for name, secret, public, message, signature in vectors():
            with self.subTest(name):
                lengths.append(len(message))
                self.assertEqual(tlog.ed25519_public_key(secret), public)
                self.assertEqual(tlog.ed25519_sign(secret, message), signature)
                self.assertIs(tlog.ed25519_verify(public, message, signature), True)
        self.assertEqual(lengths, [0, 1, 2, 1023, 64])

    def test_a_flipped_bit_anywhere_in_a_signature_fails(self):
        _, _, public, message, signature = list(vectors())[1]
        for bit in range(512):
            with self.subTest(bit=bit):
                bad = flip(signature, bit // 8, 1 << (bit % 8))
                self.assertIs(tlog.ed25519_verify(public, message, bad), False)

    def test_a_flipped_bit_in_the_message_or_key_fails(self):
        for name, _, public, message, signature in vectors():
            with self.subTest(name):
                for i in (0, len(message) // 2, len(message) - 1) if message else ():
                    for mask in (0x01, 0x80):
                        self.assertIs(
                            tlog.ed25519_verify(public, flip(message, i, mask), signature), False
                        )
                self.assertIs(tlog.ed25519_verify(public, message + b"\x00", signature), False)
                for i in (0, 7, 16, 31):
                    for mask in (0x01, 0x40):
                        self.assertIs(
                            tlog.ed25519_verify(flip(public, i, mask), message, signature), False
                        )

    def test_s_of_l_or_more_is_rejected(self):
        for name, _, public, message, signature in vectors():
            with self.subTest(name):
                s = int.from_bytes(signature[32:], "little")
                # S + L names the same scalar: accepted by a verifier that reduces S.
                self.assertIs(
                    tlog.ed25519_verify(
                        public, message, signature[:32] + (s + L).to_bytes(32, "little")
                    ),
                    False,
                )
                self.assertIs(
                    tlog.ed25519_verify(public, message, signature[:32] + L.to_bytes(32, "little")),
                    False,
                )
                self.assertIs(
                    tlog.ed25519_verify(public, message, signature[:32] + b"\xff" * 32), False
                )

    def test_wrong_lengths_are_rejected(self):
        _, _, public, message, signature = list(vectors())[2]
        self.assertIs(tlog.ed25519_verify(public[:31], message, signature), False)
        self.assertIs(tlog.ed25519_verify(public + b"\x00", message, signature), False)
        self.assertIs(tlog.ed25519_verify(public, message, signature[:63]), False)
        self.assertIs(tlog.ed25519_verify(public, message, signature + b"\x00"), False)
        self.assertIs(tlog.ed25519_verify(b"", message, b""), False)
        with self.assertRaises(TypeError):
            tlog.ed25519_verify(public.hex(), message, signature)

    def test_a_key_that_is_no_point_or_not_canonical_is_rejected(self):
        _, _, public, message, signature = list(vectors())[0]
        no_x = next(y for y in range(2, 100) if tlog._recover_x(y, 0) is None)
        self.assertIs(tlog.ed25519_verify(encode_y(no_x), message, signature), False)
        # y = p + 1 is a non-canonical encoding of y = 1 (the identity), and y = 1 with the sign
        # bit set is "x = -0": both refused by the RFC's decoding (dalek accepts both).
        self.assertIs(tlog.ed25519_verify(encode_y(P + 1), message, signature), False)
        self.assertIs(tlog.ed25519_verify(encode_y(1, 1), message, signature), False)
        self.assertIsNone(tlog._point_decompress(encode_y(P)))
        self.assertIsNotNone(tlog._point_decompress(encode_y(1)))

    def forge_with_r(self, r_enc, seed, message):
        """A signature with this R for which [S]B - [k]A is the identity: S = k * a."""
        a, _ = tlog._secret_expand(seed)
        public = tlog.ed25519_public_key(seed)
        k = int.from_bytes(hashlib.sha512(r_enc + public + message).digest(), "little") % L
        return public, r_enc + (k * a % L).to_bytes(32, "little")

    def test_r_is_compared_by_its_encoding(self):
        seed, message = seed_of("r encoding"), b"message"
        # R = the identity, canonically encoded: [S]B = R + [k]A holds, and it verifies.
        public, sig = self.forge_with_r(encode_y(1), seed, message)
        self.assertIs(tlog.ed25519_verify(public, message, sig), True)
        # The same point under its two other encodings: a verifier that decoded R leniently
        # would accept them; comparing encodings does not.
        for r_enc in (encode_y(P + 1), encode_y(1, 1)):
            public, sig = self.forge_with_r(r_enc, seed, message)
            self.assertIs(tlog.ed25519_verify(public, message, sig), False)

    def test_the_equation_is_cofactorless(self):
        # T of order 8: [L]Q for a point Q of the curve, when [4]T is not the identity.
        identity = tlog._IDENTITY_ENCODING
        t = None
        for y in range(2, 1000):
            x = tlog._recover_x(y, 0)
            if x is None:
                continue
            cand = tlog._point_mul(L, (x, y, 1, x * y % P))
            if tlog._point_compress(tlog._point_mul(4, cand)) != identity:
                t = cand
                break
        self.assertIsNotNone(t)
        self.assertEqual(tlog._point_compress(tlog._point_mul(8, t)), identity)
        seed, message = seed_of("cofactor"), b"cofactor"
        a, _ = tlog._secret_expand(seed)
        public = tlog.ed25519_public_key(seed)
        r = 1234567
        r_point = tlog._point_add(tlog._point_mul(r, tlog._B), t)
        r_enc = tlog._point_compress(r_point)
        k = int.from_bytes(hashlib.sha512(r_enc + public + message).digest(), "little") % L
        s = (r + k * a) % L
        sig = r_enc + s.to_bytes(32, "little")
        # The cofactored equation [8][S]B = [8]R + [8][k]A holds ...
        lhs = tlog._point_mul(8 * s, tlog._B)
        rhs = tlog._point_add(
            tlog._point_mul(8, r_point), tlog._point_mul(8 * k, tlog._point_decompress(public))
        )
        self.assertEqual(tlog._point_compress(lhs), tlog._point_compress(rhs))
        # ... the cofactorless one does not, and the signature is refused.
        self.assertIs(tlog.ed25519_verify(public, message, sig), False)

    def test_small_order_key_forgery_passes_the_equation_but_not_key_parsing(self):
        # As with ed25519-dalek's verify (not verify_strict): the identity key with R = the
        # identity and S = 0 satisfies the equation for every message.
        identity = encode_y(1)
        self.assertIs(tlog.ed25519_verify(identity, b"any message", identity + bytes(32)), True)
        # A verifier key never holds such a key.
        for key in (identity, encode_y(P - 1)):
            vkey = tlog.format_verifier_key("weak.example", key)
            with self.assertRaisesRegex(tlog.VerifierKeyError, "small order"):
                tlog.parse_verifier_key(vkey)


# ------------------------------------------------------------------------------------------------
# Signed notes: Go's golang.org/x/mod/sumdb/note vectors.

PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
PETER_SIG = (
    "\u2014 PeterNeumann "
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)
ENOCH_SIG = (
    "\u2014 EnochRoot "
    "rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n"
)

# c2sp.org/signed-note, "Example".
C2SP_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
C2SP_NOTE = (
    "This is an example message.\n"
    "\n"
    "\u2014 example.com/foo "
    "Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n"
)

# transparency-dev/formats log/note_test.go: a checkpoint of sum.golang.org.
SUMDB_VKEY = "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8"
SUMDB_CHECKPOINT = (
    "go.sum database tree\n"
    "6476701\n"
    "mb8QLQIs0Z0yP5Cstq6guj87oXWeC9gEM8oVikmm9Wk=\n"
    "\n"
    "\u2014 sum.golang.org "
    "Az3grsLX85Gz+s1SiTbgkuqxgItqFq7gsMUEyVnrsa9LM7Us9S+1xbFIGu95949rj4nPRYfvimWEPWL+o3GeoWwOoAw=\n"
)

# c2sp.org/tlog-checkpoint and tlog-cosignature: the example (no public keys are given).
SOFA_TEXT = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
SOFA_NOTE = (
    SOFA_TEXT
    + "\n"
    + "\u2014 example.com/behind-the-sofa "
    + "Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/"
    + "Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"
    + "\u2014 witness.example.com/w1 "
    + "jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJs"
    + "X3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==\n"
)


class GoNoteVectors(unittest.TestCase):
    def test_key_ids(self):
        peter = tlog.parse_verifier_key(PETER_VKEY)
        self.assertEqual(
            (peter.name, peter.key_id, peter.sig_type), ("PeterNeumann", 0xC74F20A3, 1)
        )
        self.assertEqual(tlog.key_id("PeterNeumann", 0x01, peter.public_key), 0xC74F20A3)
        raw = hashlib.sha256(b"PeterNeumann\n\x01" + peter.public_key).digest()[:4]
        self.assertEqual(raw.hex(), "c74f20a3")
        self.assertEqual(tlog.parse_verifier_key(ENOCH_VKEY).key_id, 0xAF0CFE78)
        self.assertEqual(tlog.format_verifier_key("PeterNeumann", peter.public_key), PETER_VKEY)

    def test_signing_reproduces_go(self):
        seed = base64.b64decode(PETER_SKEY.split("+", 4)[4])[1:]
        self.assertEqual(
            tlog.ed25519_public_key(seed), tlog.parse_verifier_key(PETER_VKEY).public_key
        )
        self.assertEqual(
            tlog.sign_note(GO_TEXT, [("PeterNeumann", seed)]), GO_TEXT + "\n" + PETER_SIG
        )

    def test_open_one_trusted_one_unknown(self):
        text, verified, unknown = tlog.open_note(
            GO_TEXT + "\n" + PETER_SIG + ENOCH_SIG, [PETER_VKEY]
        )
        self.assertEqual((text, verified, unknown), (GO_TEXT, ["PeterNeumann"], ["EnochRoot"]))

    def test_open_both_trusted(self):
        note = GO_TEXT + "\n" + PETER_SIG + ENOCH_SIG
        self.assertEqual(
            tlog.open_note(note, [PETER_VKEY, ENOCH_VKEY]),
            (GO_TEXT, ["PeterNeumann", "EnochRoot"], []),
        )
        self.assertEqual(
            tlog.open_note(note.encode("utf-8"), [ENOCH_VKEY])[1:],
            (["EnochRoot"], ["PeterNeumann"]),
        )

    def test_open_none_trusted(self):
        with self.assertRaisesRegex(tlog.UnverifiedNoteError, "no trusted key signed") as cm:
            tlog.open_note(GO_TEXT + "\n" + PETER_SIG + ENOCH_SIG, [])
        self.assertEqual(cm.exception.unknown, ["PeterNeumann", "EnochRoot"])
        self.assertEqual(cm.exception.text, GO_TEXT)

    def test_a_listed_key_twice_is_one_key_two_keys_with_one_id_are_ambiguous(self):
        self.assertEqual(
            tlog.open_note(GO_TEXT + "\n" + ENOCH_SIG, [ENOCH_VKEY, PETER_VKEY, ENOCH_VKEY])[1],
            ["EnochRoot"],
        )
        enoch = tlog.parse_verifier_key(ENOCH_VKEY)
        impostor = enoch._replace(public_key=tlog.ed25519_public_key(seed_of("impostor")))
        with self.assertRaisesRegex(tlog.VerifierKeyError, "ambiguous key EnochRoot\\+af0cfe78"):
            tlog.open_note(GO_TEXT + "\n" + ENOCH_SIG, [enoch, impostor])
        # Unused, it is no error (as Go).
        tlog.open_note(GO_TEXT + "\n" + PETER_SIG, [enoch, impostor, PETER_VKEY])

    def test_invalid_signature(self):
        bad = PETER_SIG[:60] + "ABCD" + PETER_SIG[60:]
        with self.assertRaisesRegex(tlog.InvalidSignatureError, "PeterNeumann\\+c74f20a3") as cm:
            tlog.open_note(GO_TEXT + "\n" + bad, [PETER_VKEY])
        self.assertEqual((cm.exception.name, cm.exception.key_id), ("PeterNeumann", 0xC74F20A3))
        raw = bytearray(base64.b64decode(PETER_SIG.split(" ")[2]))
        raw[10] ^= 1
        same_length = "\u2014 PeterNeumann %s\n" % base64.b64encode(bytes(raw)).decode()
        with self.assertRaisesRegex(
            tlog.InvalidSignatureError, "does not verify over the note text"
        ):
            tlog.open_note(GO_TEXT + "\n" + same_length, [PETER_VKEY])

    def test_duplicated_signatures(self):
        enoch_abcd = ENOCH_SIG[:60] + "ABCD" + ENOCH_SIG[60:]
        note = GO_TEXT + "\n" + PETER_SIG + PETER_SIG + ENOCH_SIG + ENOCH_SIG + enoch_abcd
        self.assertEqual(
            tlog.open_note(note, [PETER_VKEY])[1:], (["PeterNeumann"], ["EnochRoot", "EnochRoot"])
        )

    def test_too_many_signatures(self):
        tlog.open_note(GO_TEXT + "\n" + PETER_SIG * 100, [PETER_VKEY])
        for keys in ([PETER_VKEY], []):
            with self.assertRaisesRegex(tlog.MalformedNoteError, "101 signature lines"):
                tlog.open_note(GO_TEXT + "\n" + PETER_SIG * 101, keys)

    def test_malformed_notes(self):
        # Go's TestOpen "bad messages", and more.
        sig64 = PETER_SIG.split(" ")[2]
        bad = {
            "no blank line": GO_TEXT,
            "no signature line": GO_TEXT + "\n",
            "does not end in a newline": GO_TEXT + "\n" + PETER_SIG[:-1],
            "control character U\\+0001": "\x01" + GO_TEXT + "\n" + PETER_SIG,
            "line 1: the signature is not canonical": GO_TEXT + "\n\u2014 Bad Name " + sig64,
            "line 2 does not start with an em dash": GO_TEXT + "\n" + PETER_SIG + "Unexpected.\n",
            "control character U\\+000D": GO_TEXT.replace("\n", "\r\n") + "\r\n" + PETER_SIG,
            "4 bytes, less than a 4-byte key id": GO_TEXT + "\n\u2014 PeterNeumann x08gow==\n",
            "key name '' is empty": GO_TEXT + "\n\u2014  " + sig64,
            "not canonical standard base64": GO_TEXT + "\n" + PETER_SIG.replace("M=\n", "N=\n"),
        }
        for reason, note in bad.items():
            with self.subTest(reason):
                with self.assertRaisesRegex(tlog.MalformedNoteError, reason):
                    tlog.open_note(note, [PETER_VKEY])
        with self.assertRaisesRegex(tlog.MalformedNoteError, "not valid UTF-8 at byte 0"):
            tlog.open_note(b"\xff" + (GO_TEXT + "\n" + PETER_SIG).encode(), [PETER_VKEY])
        with self.assertRaisesRegex(tlog.MalformedNoteError, "not valid UTF-8"):
            tlog.open_note("\ud800" + GO_TEXT + "\n" + PETER_SIG, [PETER_VKEY])

    def test_mangled_verifier_keys_fail(self):
        # Go's TestNewVerifier: every proper substring, and every byte plus one.
        b = PETER_VKEY
        for i in range(len(b) + 1):
            for j in range(i + 1, len(b) + 1):
                if (i, j) != (0, len(b)):
                    with self.assertRaises(tlog.VerifierKeyError, msg=b[i:j]):
                        tlog.parse_verifier_key(b[i:j])
        for i in range(len(b)):
            mangled = b[:i] + chr(ord(b[i]) + 1) + b[i + 1 :]
            with self.assertRaises(tlog.VerifierKeyError, msg=mangled):
                tlog.parse_verifier_key(mangled)
        for vkey, reason in (
            (
                "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
                "canonical",
            ),
            (
                "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEA==",
                "32 bytes",
            ),
            ("PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "type 0x65"),
            ("PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "lowercase"),
            ("Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "name"),
            ("PeterNeumann+c74f20a3", "1 '\\+'"),
        ):
            with self.assertRaisesRegex(tlog.VerifierKeyError, reason):
                tlog.parse_verifier_key(vkey)

    def test_c2sp_example(self):
        self.assertEqual(tlog.parse_verifier_key(C2SP_VKEY).key_id, 0x530D903A)
        self.assertEqual(
            tlog.open_note(C2SP_NOTE, [C2SP_VKEY]),
            ("This is an example message.\n", ["example.com/foo"], []),
        )

    def test_sumdb_checkpoint(self):
        checkpoint, verified = tlog.open_checkpoint(
            SUMDB_CHECKPOINT, [SUMDB_VKEY], origin="go.sum database tree"
        )
        self.assertEqual(verified, ["sum.golang.org"])
        self.assertEqual(checkpoint.origin, "go.sum database tree")
        self.assertEqual(checkpoint.size, 6476701)
        self.assertEqual(
            checkpoint.root_hash, base64.b64decode("mb8QLQIs0Z0yP5Cstq6guj87oXWeC9gEM8oVikmm9Wk=")
        )
        self.assertEqual(checkpoint.extensions, ())
        with self.assertRaisesRegex(tlog.MalformedCheckpointError, "origin"):
            tlog.open_checkpoint(
                SUMDB_CHECKPOINT, [SUMDB_VKEY], origin="Go rocks but I might have the wrong ID"
            )
        with self.assertRaises(tlog.InvalidSignatureError):
            tlog.open_checkpoint(SUMDB_CHECKPOINT.replace("6476701", "6476702"), [SUMDB_VKEY])


# ------------------------------------------------------------------------------------------------
# Notes signed here, and tampered with.


class NoteRoundTrip(unittest.TestCase):
    def setUp(self):
        self.seed = seed_of("log")
        self.vkey = tlog.format_verifier_key("log.example/a", tlog.ed25519_public_key(self.seed))
        self.text = "line one\n\nline three, after an empty line\n"
        self.note = tlog.sign_note(self.text, [("log.example/a", self.seed)])

    def test_round_trip(self):
        self.assertEqual(tlog.open_note(self.note, [self.vkey]), (self.text, ["log.example/a"], []))
        note = tlog.parse_note(self.note)
        self.assertEqual(note.text, self.text)
        self.assertEqual(len(note.signatures), 1)
        self.assertEqual(len(note.signatures[0].signature), 64)

    def test_text_edited(self):
        with self.assertRaises(tlog.InvalidSignatureError):
            tlog.open_note(self.note.replace("line one", "line 0ne"), [self.vkey])
        with self.assertRaises(tlog.InvalidSignatureError):
            tlog.open_note("x" + self.note, [self.vkey])

    def test_signature_edited(self):
        head, b64 = self.note.rsplit(" ", 1)
        raw = base64.b64decode(b64)
        for i in (4, 20, 35, 67):
            edited = head + " " + base64.b64encode(flip(raw, i)).decode() + "\n"
            with self.assertRaisesRegex(tlog.InvalidSignatureError, "log.example/a"):
                tlog.open_note(edited, [self.vkey])

    def test_wrong_key_id_makes_the_signature_unknown(self):
        head, b64 = self.note.rsplit(" ", 1)
        raw = base64.b64decode(b64)
        edited = head + " " + base64.b64encode(flip(raw, 0)).decode() + "\n"
        with self.assertRaises(tlog.UnverifiedNoteError):
            tlog.open_note(edited, [self.vkey])
        # Alongside a trusted signature, it is merely unknown.
        other = tlog.signature_line("log.example/b", seed_of("b"), self.text)
        vkey_b = tlog.format_verifier_key("log.example/b", tlog.ed25519_public_key(seed_of("b")))
        self.assertEqual(
            tlog.open_note(edited + other, [self.vkey, vkey_b])[1:],
            (["log.example/b"], ["log.example/a"]),
        )

    def test_same_name_or_same_id_but_not_both_is_unknown(self):
        stranger = seed_of("stranger")
        same_name = tlog.signature_line("log.example/a", stranger, self.text)
        self.assertEqual(
            tlog.open_note(self.note + same_name, [self.vkey])[1:],
            (["log.example/a"], ["log.example/a"]),
        )
        # A line carrying the trusted key id under another name.
        line = self.note.split("\n")[-2]
        renamed = line.replace("log.example/a", "log.example/z") + "\n"
        self.assertEqual(
            tlog.open_note(self.note + renamed, [self.vkey])[1:],
            (["log.example/a"], ["log.example/z"]),
        )

    def test_missing_blank_line(self):
        with self.assertRaisesRegex(tlog.MalformedNoteError, "blank line|em dash"):
            tlog.open_note(
                self.note.replace("three, after an empty line\n\n", "three, after an empty line\n"),
                [self.vkey],
            )
        text = "single line\n"
        note = tlog.sign_note(text, [("log.example/a", self.seed)])
        with self.assertRaisesRegex(tlog.MalformedNoteError, "no blank line"):
            tlog.open_note(note.replace("\n\n", "\n"), [self.vkey])

    def test_cosigner_key_is_not_a_note_key(self):
        vkey4 = tlog.format_verifier_key(
            "log.example/a", tlog.ed25519_public_key(self.seed), tlog.SIG_COSIGNATURE_V1
        )
        with self.assertRaisesRegex(tlog.VerifierKeyError, "0x04"):
            tlog.open_note(self.note, [vkey4])
        with self.assertRaises(TypeError):
            tlog.open_note(self.note, self.vkey)

    def test_canonical_base64_only(self):
        good = base64.b64encode(bytes(range(33))).decode()
        self.assertEqual(tlog.b64decode(good, "x"), bytes(range(33)))
        for bad in (good + "=", good[:-1], " " + good, good + "\n", good[:20] + "\n" + good[20:]):
            with self.assertRaises(tlog.TlogError):
                tlog.b64decode(bad, "x")
        # "AB==" decodes to the byte 0x00, as "AA==" does, with stray low bits.
        self.assertEqual(base64.b64decode("AB=="), b"\x00")
        with self.assertRaisesRegex(tlog.TlogError, "canonical"):
            tlog.b64decode("AB==", "x")


# ------------------------------------------------------------------------------------------------
# Checkpoints.

ROOT64 = base64.b64encode(bytes(range(32))).decode()


class Checkpoints(unittest.TestCase):
    def test_valid(self):
        c = tlog.parse_checkpoint(SOFA_TEXT)
        self.assertEqual(
            (c.origin, c.size, c.extensions), ("example.com/behind-the-sofa", 20852163, ())
        )
        self.assertEqual(
            c.root_hash, base64.b64decode("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=")
        )
        c = tlog.parse_checkpoint("o with spaces+plus\n0\n%s\nextension one\n  two\n" % ROOT64)
        self.assertEqual(
            (c.origin, c.size, c.root_hash), ("o with spaces+plus", 0, bytes(range(32)))
        )
        self.assertEqual(c.extensions, ("extension one", "  two"))
        self.assertEqual(tlog.parse_checkpoint("o\n%d\n%s\n" % (2**64 - 1, ROOT64)).size, 2**64 - 1)

    def test_malformed(self):
        r = ROOT64
        bad = {
            "does not end in a newline": "o\n1\n" + r,
            "has 2 lines": "o\n1\n",
            "line 1 .* is empty": "\n1\n%s\n" % r,
            "line 4 .* is empty": "o\n1\n%s\n\next\n" % r,
            "leading zero": "o\n01\n%s\n" % r,
            "'\\+1' is not decimal": "o\n+1\n%s\n" % r,
            "' 1' is not decimal": "o\n 1\n%s\n" % r,
            "'1.0' is not decimal": "o\n1.0\n%s\n" % r,
            "'-1' is not decimal": "o\n-1\n%s\n" % r,
            "exceeds 2\\^64 - 1": "o\n%d\n%s\n" % (2**64, r),
            "31 bytes": "o\n1\n%s\n" % base64.b64encode(bytes(31)).decode(),
            "not canonical": "o\n1\n%s\n" % r.rstrip("="),
            "control character U\\+000D": "o\r\n1\n%s\n" % r,
            "control character U\\+0009": "o\n1\n%s\n\tx\n" % r,
        }
        for reason, text in bad.items():
            with self.subTest(reason):
                with self.assertRaisesRegex(tlog.MalformedCheckpointError, reason):
                    tlog.parse_checkpoint(text)
        # Stray bits in the last base64 digit.
        stray = r[:-2] + chr(ord(r[-2]) + 1) + "="
        self.assertEqual(base64.b64decode(stray), bytes(range(32)))
        with self.assertRaisesRegex(tlog.MalformedCheckpointError, "canonical"):
            tlog.parse_checkpoint("o\n1\n%s\n" % stray)


# ------------------------------------------------------------------------------------------------
# Cosignatures.


class Cosignatures(unittest.TestCase):
    def setUp(self):
        self.log_seed = seed_of("log")
        self.log_vkey = tlog.format_verifier_key(
            "log.example/a", tlog.ed25519_public_key(self.log_seed)
        )
        self.text = "log.example/a\n5\n%s\n" % ROOT64
        self.signed = tlog.sign_note(self.text, [("log.example/a", self.log_seed)])
        self.witnesses = {n: seed_of(n) for n in ("w1.example", "w2.example", "w3.example")}
        self.wkeys = [
            tlog.format_verifier_key(n, tlog.ed25519_public_key(s), tlog.SIG_COSIGNATURE_V1)
            for n, s in self.witnesses.items()
        ]

    def cosign(self, name, timestamp, text=None, seed=None):
        return tlog.cosignature_line(
            name, seed or self.witnesses[name], text or self.text, timestamp
        )

    def test_the_signed_message_of_the_spec(self):
        self.assertEqual(
            tlog.cosignature_message(SOFA_TEXT, 1679315147),
            b"cosignature/v1\n"
            b"time 1679315147\n"
            b"example.com/behind-the-sofa\n"
            b"20852163\n"
            b"CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n",
        )
        self.assertTrue(
            tlog.cosignature_message("o\n0\n%s\n" % ROOT64, 0).startswith(
                b"cosignature/v1\ntime 0\no\n"
            )
        )
        for t in (-1, 2**63):
            with self.assertRaises(ValueError):
                tlog.cosignature_message(SOFA_TEXT, t)

    def test_the_spec_example_parses_as_a_cosignature(self):
        note = tlog.parse_note(SOFA_NOTE)
        self.assertEqual(note.text, SOFA_TEXT)
        log, witness = note.signatures
        self.assertEqual(
            (log.name, log.key_id, len(log.signature)),
            ("example.com/behind-the-sofa", 0x033DE0AE, 64),
        )
        self.assertEqual(
            (witness.name, witness.key_id, len(witness.signature)),
            ("witness.example.com/w1", 0x8D66CF3F, 72),
        )
        # The timestamp of the spec's example message, "time 1679315147".
        self.assertEqual(int.from_bytes(witness.signature[:8], "big"), 1679315147)
        self.assertEqual(tlog.verify_cosignatures(SOFA_NOTE, self.wkeys, 0), [])
        with self.assertRaises(tlog.InsufficientCosignaturesError):
            tlog.verify_cosignatures(SOFA_NOTE, self.wkeys, 1)

    def test_layout_and_key_id(self):
        seed = self.witnesses["w1.example"]
        public = tlog.ed25519_public_key(seed)
        line = self.cosign("w1.example", 1700000000)
        self.assertTrue(line.startswith("\u2014 w1.example ") and line.endswith("\n"))
        raw = base64.b64decode(line.split(" ")[2])
        self.assertEqual(len(raw), 4 + 8 + 64)
        self.assertEqual(raw[:4], hashlib.sha256(b"w1.example\n\x04" + public).digest()[:4])
        self.assertNotEqual(raw[:4], hashlib.sha256(b"w1.example\n\x01" + public).digest()[:4])
        self.assertEqual(raw[4:12], (1700000000).to_bytes(8, "big"))
        message = b"cosignature/v1\ntime 1700000000\n" + self.text.encode()
        self.assertIs(tlog.ed25519_verify(public, message, raw[12:]), True)
        self.assertIs(tlog.ed25519_verify(public, self.text.encode(), raw[12:]), False)
        self.assertEqual(
            tlog.parse_verifier_key(self.wkeys[0]).key_id, int.from_bytes(raw[:4], "big")
        )
        self.assertEqual(tlog.parse_verifier_key(self.wkeys[0]).sig_type, 0x04)

    def test_round_trip(self):
        note = (
            self.signed
            + self.cosign("w1.example", 10)
            + self.cosign("w2.example", 20)
            + self.cosign("w3.example", 30)
        )
        found = tlog.verify_cosignatures(note, self.wkeys, 3)
        self.assertEqual(
            [(c.name, c.timestamp) for c in found],
            [("w1.example", 10), ("w2.example", 20), ("w3.example", 30)],
        )
        checkpoint, verified = tlog.open_checkpoint(note, [self.log_vkey], origin="log.example/a")
        self.assertEqual((checkpoint.size, verified), (5, ["log.example/a"]))
        self.assertEqual(
            tlog.open_note(note, [self.log_vkey])[2], ["w1.example", "w2.example", "w3.example"]
        )

    def test_k_of_n_counts_distinct_witnesses(self):
        note = (
            self.signed
            + self.cosign("w1.example", 10)
            + self.cosign("w1.example", 11)
            + self.cosign("w1.example", 10)
            + self.cosign("w2.example", 20)
        )
        found = tlog.verify_cosignatures(note, self.wkeys, 2)
        self.assertEqual(
            [(c.name, c.timestamp) for c in found], [("w1.example", 10), ("w2.example", 20)]
        )
        with self.assertRaisesRegex(
            tlog.InsufficientCosignaturesError, "2 distinct witnesses .*3 required"
        ) as cm:
            tlog.verify_cosignatures(note, self.wkeys, 3)
        self.assertEqual(len(cm.exception.cosignatures), 2)
        # One public key under two names is one witness.
        seed = self.witnesses["w1.example"]
        alias = tlog.format_verifier_key(
            "w1-alias.example", tlog.ed25519_public_key(seed), tlog.SIG_COSIGNATURE_V1
        )
        note = (
            self.signed
            + self.cosign("w1.example", 10)
            + self.cosign("w1-alias.example", 10, seed=seed)
        )
        self.assertEqual(len(tlog.verify_cosignatures(note, self.wkeys + [alias], 1)), 2)
        with self.assertRaisesRegex(tlog.InsufficientCosignaturesError, "1 distinct witness "):
            tlog.verify_cosignatures(note, self.wkeys + [alias], 2)
        # The log's own signature and unknown witnesses count for nothing.
        note = self.signed + self.cosign("w4.example", 1, seed=seed_of("w4.example"))
        with self.assertRaisesRegex(
            tlog.InsufficientCosignaturesError, "0 distinct witnesses .*none"
        ):
            tlog.verify_cosignatures(note, self.wkeys, 1)

    def test_tampering(self):
        good = self.cosign("w1.example", 1700000000)
        # The checkpoint edited after cosigning.
        edited = (self.signed + good).replace("\n5\n", "\n6\n")
        with self.assertRaisesRegex(
            tlog.InvalidSignatureError,
            "w1.example\\+[0-9a-f]{8} \\(time 1700000000\\) does not verify",
        ):
            tlog.verify_cosignatures(edited, self.wkeys, 1)
        raw = base64.b64decode(good.split(" ")[2])
        prefix = "\u2014 w1.example "
        for i, what in ((5, "timestamp"), (11, "timestamp"), (12, "R"), (75, "S")):
            bad = prefix + base64.b64encode(flip(raw, i)).decode() + "\n"
            with self.subTest(what, byte=i):
                with self.assertRaises(tlog.InvalidSignatureError):
                    tlog.verify_cosignatures(self.signed + bad, self.wkeys, 1)
        # A timestamp above 2^63 - 1.
        big = raw[:4] + (2**63).to_bytes(8, "big") + raw[12:]
        with self.assertRaisesRegex(tlog.InvalidSignatureError, "above 2\\^63 - 1"):
            tlog.verify_cosignatures(
                self.signed + prefix + base64.b64encode(big).decode() + "\n", self.wkeys, 1
            )
        # A plain signature (no timestamp) under the witness's cosignature key id.
        plain = raw[:4] + tlog.ed25519_sign(self.witnesses["w1.example"], self.text.encode())
        with self.assertRaisesRegex(tlog.InvalidSignatureError, "64 bytes after the key id"):
            tlog.verify_cosignatures(
                self.signed + prefix + base64.b64encode(plain).decode() + "\n", self.wkeys, 1
            )
        # The timestamp and signature, but of the text without the header lines.
        headless = raw[:12] + tlog.ed25519_sign(self.witnesses["w1.example"], self.text.encode())
        with self.assertRaises(tlog.InvalidSignatureError):
            tlog.verify_cosignatures(
                self.signed + prefix + base64.b64encode(headless).decode() + "\n", self.wkeys, 1
            )
        # A plain note signature by the witness key carries the 0x01 key id: unknown here.
        line = tlog.signature_line("w1.example", self.witnesses["w1.example"], self.text)
        with self.assertRaises(tlog.InsufficientCosignaturesError):
            tlog.verify_cosignatures(self.signed + line, self.wkeys, 1)

    def test_bad_inputs(self):
        with self.assertRaisesRegex(tlog.VerifierKeyError, "0x01"):
            tlog.verify_cosignatures(self.signed, [self.log_vkey], 0)
        note = tlog.sign_note("not\na checkpoint\n", [("log.example/a", self.log_seed)])
        with self.assertRaises(tlog.MalformedCheckpointError):
            tlog.verify_cosignatures(note, self.wkeys, 0)
        with self.assertRaises(tlog.MalformedNoteError):
            tlog.verify_cosignatures(self.text, self.wkeys, 0)
        with self.assertRaises(ValueError):
            tlog.verify_cosignatures(self.signed, self.wkeys, -1)


# ------------------------------------------------------------------------------------------------
# Merkle trees: transparency-dev/merkle vectors.

LEAF_INPUTS = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
]
NODE_HASHES = [
    [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
        "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
        "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
        "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
    ],
    [
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
    ],
    [
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    ["5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"],
]
ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
# (leaf index, tree size, proof); proofgen numbers leaves from 1, these from 0.
INCLUSION_PROOFS = [
    (0, 1, []),
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]
# (old size, new size, proof).
CONSISTENCY_PROOFS = [
    (1, 1, []),
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
]
SOME_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")


def hx(hashes):
    return [bytes.fromhex(h) for h in hashes]


class MerkleReference(unittest.TestCase):
    leaves = [tlog.rfc6962_leaf_hash(bytes.fromhex(d)) for d in LEAF_INPUTS]

    def test_leaf_and_node_hashes(self):
        self.assertEqual(self.leaves, hx(NODE_HASHES[0]))
        for level in range(1, len(NODE_HASHES)):
            below = hx(NODE_HASHES[level - 1])
            self.assertEqual(
                [tlog.node_hash(below[2 * i], below[2 * i + 1]) for i in range(len(below) // 2)],
                hx(NODE_HASHES[level]),
            )

    def test_roots(self):
        self.assertEqual(tlog.EMPTY_ROOT, bytes.fromhex(ROOTS[0]))
        for n in range(len(ROOTS)):
            self.assertEqual(
                tlog.root_from_leaf_hashes(self.leaves[:n]), bytes.fromhex(ROOTS[n]), n
            )

    def test_inclusion_vectors(self):
        for index, size, proof in INCLUSION_PROOFS:
            with self.subTest(index=index, size=size):
                self.assertEqual(tlog.inclusion_proof(self.leaves[:size], index), hx(proof))
                tlog.verify_inclusion(
                    self.leaves[index], index, size, hx(proof), bytes.fromhex(ROOTS[size])
                )

    def test_consistency_vectors(self):
        for old, new, proof in CONSISTENCY_PROOFS:
            with self.subTest(old=old, new=new):
                self.assertEqual(tlog.consistency_proof(self.leaves[:new], old), hx(proof))
                tlog.verify_consistency(
                    old, new, bytes.fromhex(ROOTS[old]), bytes.fromhex(ROOTS[new]), hx(proof)
                )

    def test_inclusion_corruptions_of_proofgen(self):
        for index, size, proof in INCLUSION_PROOFS:
            proof, root, leaf = hx(proof), bytes.fromhex(ROOTS[size]), self.leaves[index]
            probes = [
                (index - 1, size, root, leaf, proof),
                (index + 1, size, root, leaf, proof),
                (index ^ 2, size, root, leaf, proof),
                (index, size * 2, root, leaf, proof),
                (index, size // 2, root, leaf, proof),
                (index, size, root, b"WrongLeaf", proof),
                (index, size, tlog.EMPTY_ROOT, leaf, proof),
                (index, size, SOME_HASH, leaf, proof),
                (index, size, root, leaf, proof + [b""]),
                (index, size, root, leaf, proof + [root]),
                (index, size, root, leaf, [b""] + proof),
                (index, size, root, leaf, [root] + proof),
            ]
            for i in range(len(proof)):
                probes.append(
                    (index, size, root, leaf, proof[:i] + [flip(proof[i], 0, 8)] + proof[i + 1 :])
                )
            if proof:
                probes.append((index, size, root, leaf, proof[:-1]))
            if len(proof) > 1:
                probes.append((index, size, root, leaf, [proof[0], SOME_HASH] + proof[1:]))
            for n, (i, s, r, lh, p) in enumerate(probes):
                with self.subTest(index=index, size=size, probe=n):
                    with self.assertRaises(tlog.InclusionProofError):
                        tlog.verify_inclusion(lh, i, s, p, r)
        # proofgen's single-entry and static probes.
        data_hash = tlog.rfc6962_leaf_hash(b"data")
        tlog.verify_inclusion(data_hash, 0, 1, [], data_hash)
        for lh, r in ((b"", data_hash), (data_hash, b""), (b"", b"")):
            with self.assertRaises(tlog.InclusionProofError):
                tlog.verify_inclusion(lh, 0, 1, [], r)
        for i, s in ((0, 0), (0, 1), (1, 0), (2, 1)):
            for lh, r in ((SOME_HASH, b""), (b"", tlog.EMPTY_ROOT), (SOME_HASH, tlog.EMPTY_ROOT)):
                with self.assertRaises(tlog.InclusionProofError):
                    tlog.verify_inclusion(lh, i, s, [], r)

    def test_consistency_corruptions_of_proofgen(self):
        for old, new, proof in CONSISTENCY_PROOFS[1:]:
            proof, r1, r2 = hx(proof), bytes.fromhex(ROOTS[old]), bytes.fromhex(ROOTS[new])
            probes = [
                (old - 1, new, r1, r2, proof),
                (old + 1, new, r1, r2, proof),
                (old ^ 2, new, r1, r2, proof),
                (old, new * 2, r1, r2, proof),
                (old, new // 2, r1, r2, proof),
                (old, new, b"WrongRoot", r2, proof),
                (old, new, r1, b"WrongRoot", proof),
                (old, new, r2, r1, proof),
                (old, new, r1, r2, []),
                (old, new, r1, r2, proof + [b""]),
                (old, new, r1, r2, proof + [r1]),
                (old, new, r1, r2, proof + [r2]),
                (old, new, r1, r2, [b""] + proof),
                (old, new, r1, r2, [r1] + proof),
                (old, new, r1, r2, [r2] + proof),
                (old, new, r1, r2, [proof[0]] + proof),
                (old, new, r1, r2, proof[:-1]),
            ]
            for i in range(len(proof)):
                probes.append(
                    (old, new, r1, r2, proof[:i] + [flip(proof[i], 0, 16)] + proof[i + 1 :])
                )
            for n, (o, s, a, b, p) in enumerate(probes):
                with self.subTest(old=old, new=new, probe=n):
                    with self.assertRaises(tlog.ConsistencyProofError):
                        tlog.verify_consistency(o, s, a, b, p)

    def test_edge_sizes(self):
        r1, r2 = bytes.fromhex(ROOTS[1]), bytes.fromhex(ROOTS[2])
        # Equal sizes: an empty proof and equal roots.
        tlog.verify_consistency(1, 1, r1, r1, [])
        tlog.verify_consistency(0, 0, tlog.EMPTY_ROOT, tlog.EMPTY_ROOT, [])
        with self.assertRaisesRegex(tlog.ConsistencyProofError, "different roots"):
            tlog.verify_consistency(1, 1, r1, r2, [])
        with self.assertRaisesRegex(tlog.ConsistencyProofError, "must be empty; it has 1"):
            tlog.verify_consistency(1, 1, r1, r1, [r1])
        # From the empty tree: an empty proof, and the empty tree's root as the old root.
        tlog.verify_consistency(0, 1, tlog.EMPTY_ROOT, r1, [])
        tlog.verify_consistency(0, 8, tlog.EMPTY_ROOT, bytes.fromhex(ROOTS[8]), [])
        with self.assertRaisesRegex(tlog.ConsistencyProofError, "empty tree's root"):
            tlog.verify_consistency(0, 1, r1, r1, [])
        with self.assertRaisesRegex(tlog.ConsistencyProofError, "empty tree's root"):
            tlog.verify_consistency(0, 0, r1, r1, [])
        with self.assertRaisesRegex(tlog.ConsistencyProofError, "must be empty; it has 1"):
            tlog.verify_consistency(0, 1, tlog.EMPTY_ROOT, r1, [tlog.EMPTY_ROOT])
        # Sizes out of order.
        for old, new in ((2, 1), (1, 0), (-1, 1)):
            with self.assertRaisesRegex(tlog.ConsistencyProofError, "not in \\[0"):
                tlog.verify_consistency(old, new, r1, r2, [])
        with self.assertRaisesRegex(tlog.ConsistencyProofError, "is empty; it needs 1"):
            tlog.verify_consistency(1, 2, r1, r2, [])
        self.assertEqual(tlog.consistency_proof(self.leaves, 0), [])
        self.assertEqual(tlog.consistency_proof(self.leaves, 8), [])
        with self.assertRaises(ValueError):
            tlog.consistency_proof(self.leaves, 9)
        with self.assertRaises(ValueError):
            tlog.inclusion_proof(self.leaves, 8)
        with self.assertRaises(TypeError):
            tlog.verify_inclusion(self.leaves[0], True, 1, [], self.leaves[0])

    def test_auditring_leaf(self):
        # The tree leaf of a record hashes its 32-byte leaf field (docs/FORMAT.md section 7).
        record_leaf = bytes.fromhex(
            "3af98cd0a0818a1edb7fb98f0f805a86f086087a9963aea6596f1deb03b4fbed"
        )
        self.assertEqual(
            tlog.leaf_hash(record_leaf), hashlib.sha256(b"\x00" + record_leaf).digest()
        )
        with self.assertRaises(ValueError):
            tlog.leaf_hash(record_leaf[:31])
        with self.assertRaises(ValueError):
            tlog.root_from_leaf_hashes([record_leaf[:31]])


# ------------------------------------------------------------------------------------------------
# Merkle trees: every proof of every tree of 1 to 40 leaves.

MAX_LEAVES = 40


def iterative_root(leaf_hashes):
    """MTH computed another way: merge equal perfect subtrees left to right, then fold the
    remaining ones right to left."""
    stack = []
    for h in leaf_hashes:
        size = 1
        while stack and stack[-1][0] == size:
            _, left = stack.pop()
            h = tlog.node_hash(left, h)
            size *= 2
        stack.append((size, h))
    if not stack:
        return tlog.EMPTY_ROOT
    root = stack.pop()[1]
    while stack:
        root = tlog.node_hash(stack.pop()[1], root)
    return root


class MerkleExhaustive(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # Record leaf fields of records seq 1..40, as tree leaves at index seq - 1.
        cls.leaves = [
            tlog.leaf_hash(hashlib.sha256(b"record %d" % seq).digest())
            for seq in range(1, MAX_LEAVES + 1)
        ]
        cls.roots = [tlog.root_from_leaf_hashes(cls.leaves[:n]) for n in range(MAX_LEAVES + 1)]

    def test_roots_agree_with_another_computation(self):
        for n in range(MAX_LEAVES + 1):
            self.assertEqual(self.roots[n], iterative_root(self.leaves[:n]), n)
        self.assertEqual(len(set(self.roots)), MAX_LEAVES + 1)

    def assert_fails(self, error, fn, *args):
        try:
            fn(*args)
        except error:
            return
        self.fail("%s%r did not raise %s" % (fn.__name__, args[:3], error.__name__))

    def test_every_inclusion_proof(self):
        for size in range(1, MAX_LEAVES + 1):
            leaves, root = self.leaves[:size], self.roots[size]
            for index in range(size):
                proof = tlog.inclusion_proof(leaves, index)
                self.assertEqual(len(proof), tlog.inclusion_proof_len(index, size))
                tlog.verify_inclusion(leaves[index], index, size, proof, root)
                bad = tlog.InclusionProofError
                # Every single-byte corruption of the proof, the leaf hash, the root.
                for i in range(len(proof)):
                    for b in range(32):
                        p = list(proof)
                        p[i] = flip(p[i], b)
                        self.assert_fails(
                            bad, tlog.verify_inclusion, leaves[index], index, size, p, root
                        )
                for b in range(32):
                    self.assert_fails(
                        bad, tlog.verify_inclusion, flip(leaves[index], b), index, size, proof, root
                    )
                    self.assert_fails(
                        bad, tlog.verify_inclusion, leaves[index], index, size, proof, flip(root, b)
                    )
                # Another index, another size, the proof shortened or lengthened.
                for other in range(size):
                    if other != index:
                        self.assert_fails(
                            bad, tlog.verify_inclusion, leaves[index], other, size, proof, root
                        )
                # Another size that needs another number of hashes. (One that needs as many can
                # lead to this root: the signed checkpoint, not the proof, binds size and root.)
                for other in range(index + 1, MAX_LEAVES + 1):
                    if tlog.inclusion_proof_len(index, other) != len(proof):
                        self.assert_fails(
                            bad, tlog.verify_inclusion, leaves[index], index, other, proof, root
                        )
                if proof:
                    with self.assertRaisesRegex(
                        bad, "has %d hashes; .* needs %d" % (len(proof) - 1, len(proof))
                    ):
                        tlog.verify_inclusion(leaves[index], index, size, proof[:-1], root)
                with self.assertRaisesRegex(
                    bad, "has %d hashes; .* needs %d" % (len(proof) + 1, len(proof))
                ):
                    tlog.verify_inclusion(leaves[index], index, size, proof + [root], root)

    def test_every_consistency_proof(self):
        for new in range(1, MAX_LEAVES + 1):
            leaves, new_root = self.leaves[:new], self.roots[new]
            for old in range(0, new + 1):
                old_root = self.roots[old]
                proof = tlog.consistency_proof(leaves, old)
                if 0 < old < new:
                    self.assertEqual(len(proof), tlog.consistency_proof_len(old, new))
                else:
                    self.assertEqual(proof, [])
                tlog.verify_consistency(old, new, old_root, new_root, proof)
                bad = tlog.ConsistencyProofError
                for i in range(len(proof)):
                    for b in range(32):
                        p = list(proof)
                        p[i] = flip(p[i], b)
                        self.assert_fails(
                            bad, tlog.verify_consistency, old, new, old_root, new_root, p
                        )
                for b in range(32):
                    self.assert_fails(
                        bad, tlog.verify_consistency, old, new, flip(old_root, b), new_root, proof
                    )
                    # From the empty tree, nothing binds the new root.
                    if old > 0:
                        self.assert_fails(
                            bad,
                            tlog.verify_consistency,
                            old,
                            new,
                            old_root,
                            flip(new_root, b),
                            proof,
                        )

                # Other sizes that need another number of hashes (as for inclusion, sizes that need
                # as many are bound to the roots by the checkpoints, not by the proof).
                def need(o, n):
                    return 0 if o in (0, n) else tlog.consistency_proof_len(o, n)

                for other in range(max(old, 1), MAX_LEAVES + 1):
                    if old > 0 and need(old, other) != len(proof):
                        self.assert_fails(
                            bad, tlog.verify_consistency, old, other, old_root, new_root, proof
                        )
                for other in range(0, new + 1):
                    if need(other, new) != len(proof) or (other == 0 and old != 0):
                        self.assert_fails(
                            bad, tlog.verify_consistency, other, new, old_root, new_root, proof
                        )
                if 0 < old < new:
                    need = len(proof)
                    if need > 1:
                        with self.assertRaisesRegex(
                            bad, "has %d hashes; it needs %d" % (need - 1, need)
                        ):
                            tlog.verify_consistency(old, new, old_root, new_root, proof[:-1])
                    with self.assertRaisesRegex(
                        bad, "has %d hashes; it needs %d" % (need + 1, need)
                    ):
                        tlog.verify_consistency(old, new, old_root, new_root, proof + [new_root])


if __name__ == "__main__":
    unittest.main()
