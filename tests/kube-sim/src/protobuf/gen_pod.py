#!/usr/bin/env python3
"""Writes `pod.rs`: the protobuf field tables of `Pod` and every message it reaches.

Field numbers and wire types come from the `k8s-pb` crate (prost code generated from the
Kubernetes `generated.proto` files), JSON names from `k8s-openapi` (its serde field keys), both
in the local cargo registry. Run from this directory: `python3 gen_pod.py > pod.rs && cargo fmt --all`.
"""
import glob
import os
import re
import sys

REG = glob.glob(os.path.expanduser("~/.cargo/registry/src/*/"))[0]
PB = glob.glob(REG + "k8s-pb-0.9*/src")[0]
OA = glob.glob(REG + "k8s-openapi-0.29*/src/v1_37")[0]

# Messages with a JSON form of their own (a string, a number) or tables in protobuf.rs.
SPECIAL = {
    "apimachinery::pkg::apis::meta::v1::Time": "Ty::Time { micro: false }",
    "apimachinery::pkg::apis::meta::v1::MicroTime": "Ty::Time { micro: true }",
    "apimachinery::pkg::apis::meta::v1::FieldsV1": "Ty::FieldsV1",
    "apimachinery::pkg::apis::meta::v1::ObjectMeta": "Ty::Msg(&super::OBJECT_META)",
    "apimachinery::pkg::api::resource::Quantity": "Ty::Quantity",
    "apimachinery::pkg::util::intstr::IntOrString": "Ty::IntOrString",
}

FIELD = re.compile(
    r'#\[prost\((\w+)(?: = "([^"]*)")?(?:, (optional|repeated|required))?(?:, packed = "false")?, tag = "(\d+)"\)\]\s*'
    r'pub (r#)?(\w+):\s*([^;]*?),\n\s*(?=///|#\[|$)')
STRUCT = re.compile(r'pub struct (\w+) \{(.*?)\n\}', re.S)


def parse(module):
    text = open(os.path.join(PB, module.replace("::", "/"), "mod.rs")).read()
    out = {}
    for m in STRUCT.finditer(text):
        body = m.group(2) + "\n"
        fields = [f.groups() for f in FIELD.finditer(body)]
        if len(fields) != body.count("#[prost("):
            sys.exit(f"{module}::{m.group(1)}: could not read every field")
        out[m.group(1)] = fields
    return out


def resolve(module, rust_ty):
    """The message path named in a field's Rust type, relative to `module`."""
    inner = re.findall(r'((?:super::)*(?:\w+::)*[A-Z]\w*)', rust_ty)
    names = [n for n in inner if n.split("::")[-1] not in ("Option", "Vec", "BTreeMap", "String")]
    if not names:
        return None
    name = names[-1]
    parts = module.split("::")
    while name.startswith("super::"):
        name = name[len("super::"):]
        parts = parts[:-1]
    if "::" in name:
        return name
    return "::".join(parts + [name])


def json_names(path):
    module, name = path.rsplit("::", 1)
    # k8s-openapi flattens an embedded struct into its parent: read the parent's names.
    embedded = path in EMBEDDED_IN
    name = EMBEDDED_IN.get(path, name)
    snake = re.sub(r'(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])', '_', name).lower()
    f = os.path.join(OA, module.replace("::", "/"), snake + ".rs")
    text = open(f).read()
    if not embedded:
        # The Go name (`HTTPGetAction`), where prost wrote `HttpGetAction`.
        GO_NAME[path] = re.search(r'pub struct (\w+)', text).group(1)
    # Keyed without underscores: the two crates split acronyms differently (`target_ww_ns`,
    # `target_wwns`).
    return {k.replace("_", ""): j for j, k in re.findall(r'"(\w+)" => Field::Key_(\w+)', text)}


EMBEDDED_IN = {}
GO_NAME = {}
modules = {}
todo = ["api::core::v1::Pod"]
done = {}
while todo:
    path = todo.pop()
    if path in done or path in SPECIAL:
        continue
    module, name = path.rsplit("::", 1)
    if module not in modules:
        modules[module] = parse(module)
    fields = modules[module][name]
    names = json_names(path)
    rows = []
    for kind, arg, label, tag, _raw, rust, rust_ty in fields:
        json = names.get(rust.replace("_", ""))
        repeated = label == "repeated"
        if kind == "message":
            target = resolve(module, rust_ty)
            if json is None:
                tmod, tname = target.rsplit("::", 1)
                if tmod not in modules:
                    modules[tmod] = parse(tmod)
                inner = [f[5].replace("_", "") for f in modules[tmod][tname]]
                if all(n in names for n in inner):
                    # Go embeds it (`json:",inline"`): its fields are the parent's in JSON.
                    EMBEDDED_IN[target] = name
                    todo.append(target)
                    rows.append((int(tag), "", ("Embed", target), False))
                else:
                    # Newer than k8s-openapi's v1_37 (alpha): left out, so a body carrying it
                    # gets a 415.
                    print(f"skipped {path}.{rust}", file=sys.stderr)
                continue
            todo.append(target)
            ty = SPECIAL.get(target) or ("Msg", target)
        elif kind in ("string",):
            ty = "Ty::Str"
        elif kind == "bool":
            ty = "Ty::Bool"
        elif kind in ("int32", "int64"):
            ty = "Ty::Int"
        elif kind == "btree_map" and arg == "string, string":
            ty = "Ty::MapStr"
        elif kind == "btree_map" and arg == "string, bytes":
            ty = "Ty::MapBytes"
        elif kind == "btree_map" and arg == "string, message" and resolve(module, rust_ty) == "apimachinery::pkg::api::resource::Quantity":
            ty = "Ty::MapQuantity"
        else:
            sys.exit(f"{path}.{rust}: unsupported {kind} {arg}")
        if json is None:
            print(f"skipped {path}.{rust}", file=sys.stderr)
            continue
        rows.append((int(tag), json, ty, repeated))
    done[path] = rows

consts = {}
for path in done:
    c = path.split("::")[-1]
    upper = re.sub(r'(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])', '_', c).upper()
    if upper in consts.values():
        sys.exit(f"name clash: {path}")
    consts[path] = upper

print("//! Protobuf field tables of `Pod` and the messages it reaches. Generated by `gen_pod.py`")
print("//! (k8s-pb 0.9 field numbers, k8s-openapi JSON names); do not edit by hand.")
print()
print("use super::{FieldDef, Msg, Ty};")
for path in sorted(done, key=lambda p: consts[p]):
    rows = done[path]
    print()
    print(f"pub(super) static {consts[path]}: Msg = Msg {{")
    print(f'    name: "{GO_NAME.get(path, path.split("::")[-1])}",')
    print("    fields: &[")
    for tag, json, ty, repeated in sorted(rows):
        if isinstance(ty, tuple):
            ty = f"Ty::{ty[0]}(&{consts[ty[1]]})"
        rep = ", repeated" if repeated else ""
        print(f'        f!({tag}, "{json}", {ty}{rep}),')
    print("    ],")
    print("};")
