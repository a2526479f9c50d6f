# Independent cross-check of the golden vectors with another CBOR and
# ed25519 implementation (Python cbor2 + PyNaCl). Not part of CI:
#   python3 -m venv /tmp/v && /tmp/v/bin/pip install cbor2 pynacl
#   cd tests/vectors && /tmp/v/bin/python xcheck.py
import glob, hashlib, os, cbor2
from nacl.signing import VerifyKey, SigningKey

def load(n):
    return bytes.fromhex("".join(open(n + ".hex").read().split()))

for f in sorted(glob.glob("*.hex")):
    name = f[:-4]
    b = load(name)
    if name.startswith("signed-bytes") or name.startswith("derived"):
        continue
    v = cbor2.loads(b)
    # Deterministic encoding: cbor2's canonical encoder gives the same bytes.
    assert cbor2.dumps(v, canonical=True) == b, name
    print(name, "ok", v[1])

# derived ASN of key seed [1]*32
sk = SigningKey(bytes([1] * 32))
pk = bytes(sk.verify_key)
d = hashlib.sha256(b"agent-bgp/v1/derived-asn\0" + pk).digest()
asn = 4200000000 + int.from_bytes(d[:8], "big") % 94967295
assert asn.to_bytes(4, "big") == load("derived-asn-key1"), asn
print("derived asn", asn)

# Verify every signature in the update vector from first principles.
u = cbor2.loads(load("update"))[2]
certs = u[1]
for c in certs:
    issuer = c.get(4)
    msg = b"agent-bgp/v1/asn-cert\0" + cbor2.dumps([c[0], c[1], c[2], c[3], issuer], canonical=True)
    VerifyKey(issuer or c[1]).verify(msg, c[5])
attrs = u[0]
for r in u[2]:
    a = attrs[r[2]]
    proof = r[3]
    o = proof[0]
    oc = certs[o[0]]
    msg = b"agent-bgp/v1/origin\0" + cbor2.dumps(
        [r[0], a.get(10, ""), a.get(4, []), oc[0], oc[1], a.get(5, 0), o[1]], canonical=True)
    VerifyKey(oc[1]).verify(msg, o[2])
    segs = []
    prev = None
    for h in proof[1]:
        hc = certs[h[0]]
        segs.append([hc[0], h.get(1, 1)])
        msg = b"agent-bgp/v1/path\0" + cbor2.dumps([o[2], segs, h[2], prev], canonical=True)
        VerifyKey(hc[1]).verify(msg, h[3])
        prev = h[3]
    print("route", r[0], "verifies; as_path", a.get(0))

# The CALL's caller signature, with the signed bytes rebuilt from the spec.
def community_text(c):
    if isinstance(c, str):
        return c
    if isinstance(c, int):
        return f"{c >> 16}:{c & 0xffff}"
    return ":".join(str(x) for x in c)

o = cbor2.loads(load("call"))[2][3]
signed = b"agent-bgp/v1/call\0" + cbor2.dumps([
    o[0], o[1], o[2], [community_text(c) for c in o.get(3, [])], o[4], o[5],
    1 if o.get(6) else 0, o.get(7), o[8], o[9], o[10]], canonical=True)
assert signed == load("signed-bytes-call")
VerifyKey(o[1]).verify(signed, o[12])
print("call signature verifies")
print("all ok")
