#!/usr/bin/python3
"""Generate the golden tensors for the C# parity tests (see README.md in this folder).

Usage (Debian's interpreter; the pyenv `python3` on PATH has no torch):
    /usr/bin/python3 tests/golden/make_golden.py            # run the sanity checks, write files
    /usr/bin/python3 tests/golden/make_golden.py --check    # checks only; compare with the files

Writes, next to this script:
    spheromoe_golden.safetensors   SpheroMoE at the paper's routing shape, reduced width
    softmoe_golden.safetensors     Soft MoE (Jetpack wrapper, slot_layernorm=False)
    entmax15_golden.safetensors    1.5-entmax forward and backward on 6 rows of 294

Everything is float32 and computed in float32, training mode, dropout 0, DropPath 0.
Loss for the gradients: sum(output * input.grad_output).
"""
import argparse
import json
import math
import os
import struct
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import jetpack_ref as ref  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = "tests/golden/make_golden.py"
SEED = 3407


# --------------------------------------------------------------------------------------------
# safetensors, by hand: u64 LE header length, JSON header padded with spaces to a multiple of
# 8, then the raw little-endian tensor bytes, contiguous, in header order.
# --------------------------------------------------------------------------------------------

def write_safetensors(path, tensors, metadata):
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        # (np.ascontiguousarray would turn a 0-d tensor into shape [1]; keep shape [] as is.)
        arr = t.detach().cpu().to(torch.float32).contiguous().numpy().astype("<f4", order="C")
        raw = arr.tobytes()
        header[name] = {"dtype": "F32", "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((-(8 + len(text))) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for raw in blobs:
            f.write(raw)


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + length].decode("utf-8"))
    metadata = header.pop("__metadata__", {})
    base = 8 + length
    tensors, expected = {}, 0
    for name, info in header.items():
        assert info["dtype"] == "F32", (name, info["dtype"])
        begin, end = info["data_offsets"]
        assert begin == expected, f"{name}: tensors are not contiguous in header order"
        arr = np.frombuffer(data[base + begin:base + end], dtype="<f4").reshape(info["shape"])
        tensors[name] = torch.from_numpy(arr.copy())
        expected = end
    assert base + expected == len(data), "trailing bytes after the last tensor"
    return tensors, metadata


# --------------------------------------------------------------------------------------------
# Running a case: forward, loss = sum(y * grad_output), backward; optional float64 re-run.
# --------------------------------------------------------------------------------------------

def run_layer(module, x, grad_output, extra_args=()):
    """Returns y, dispatch, combine, grad of x, and grads of the parameters by name."""
    x = x.clone().requires_grad_(True)
    module.zero_grad(set_to_none=True)
    y, dispatch, combine = module(x, *extra_args, return_weights=True)
    (y * grad_output).sum().backward()
    grads = {name: p.grad.detach().clone() for name, p in module.named_parameters()}
    return y.detach(), dispatch.detach(), combine.detach(), x.grad.detach(), grads


def float64_discrepancy(module, tensors, x, grad_output, extra_args=()):
    """Re-run the same case in float64; max |f32 - f64| per stored output tensor. Gives the C#
    tests a scale for their tolerances (float32 rounding of this very computation)."""
    import copy
    m64 = copy.deepcopy(module).double()
    y, dsp, cmb, gx, grads = run_layer(m64, x.double(), grad_output.double(),
                                       tuple(a.double() for a in extra_args))
    ref64 = {"output.y": y, "debug.dispatch": dsp, "debug.combine": cmb, "grad.x": gx}
    ref64.update({f"grad.{k}": v for k, v in grads.items()})
    return {k: float((tensors[k].double() - v).abs().max()) for k, v in ref64.items()}


def tanh_gelu_shift(module, x, extra_args=()):
    """max |y(erf GELU) - y(tanh GELU)|: how strongly this case tells the two GELUs apart."""
    import copy
    m = copy.deepcopy(module)
    with torch.no_grad():
        y_erf = m(x, *extra_args)
        for sub in m.modules():
            if isinstance(sub, ref.MultiExpertMLP):
                sub.gelu_approximate = "tanh"
        y_tanh = m(x, *extra_args)
    return float((y_erf - y_tanh).abs().max())


# --------------------------------------------------------------------------------------------
# Cases
# --------------------------------------------------------------------------------------------

def init_experts_for_golden(experts):
    """Expert weights ~ U(+-sqrt(6/in)) per expert (kaiming-uniform, gain sqrt 2, fan_in = in),
    biases 0.02*randn.

    Deliberately larger than the from-scratch init of spec 3.1 (whose 3-D fan_in = out*in gives
    a bound of 1/32 here): with that, fc1 pre-activations stay below ~0.1, the expert MLP is
    almost linear, and an erf-vs-tanh GELU mix-up changes output.y by 3e-9, below float32
    noise. At this scale pre-activations are O(1) and the same mix-up shows as ~3e-4.
    """
    with torch.no_grad():
        for lin in (experts.vit_fc1, experts.vit_fc2):
            bound = math.sqrt(6.0 / lin.weight.shape[2])
            lin.weight.uniform_(-bound, bound)
            lin.bias.copy_(0.02 * torch.randn(lin.bias.shape))


def golden_tokens(b, n, d):
    """LayerNorm-output-like tokens: N(0,1) entries, token norms spread by a log-normal factor
    (about 0.2x..5x), plus one shared random direction per sample, as real LN2 outputs of a
    ViT are strongly correlated across tokens (this keeps the slot averages away from 0)."""
    x = torch.randn(b, n, d) * torch.exp(0.75 * torch.randn(b, n, 1))
    return x + torch.randn(b, 1, d)

def spheromoe_case():
    B, N, D, EC, EU, S = 2, 197, 16, 98, 196, 1
    HC, HU = 4 * D, D
    TAU_D, TAU_C = 0.5, 0.7
    torch.manual_seed(SEED)
    layer = ref.SpheroMoE(D, EC, EU, core_hidden=HC, univ_hidden=HU, slots_per_expert=S,
                          expert_drop=0.0, drop_path_rate=0.0, use_noise=True)
    with torch.no_grad():
        # phi: orthogonal, from the constructor (spec 3.1).
        layer.slot_norm.weight.copy_(1 + 0.1 * torch.randn(D))
        layer.slot_norm.bias.copy_(0.1 * torch.randn(D))
        layer.scales[0].fill_(TAU_D)
        layer.scales[1].fill_(TAU_C)
    init_experts_for_golden(layer.core_experts)
    init_experts_for_golden(layer.univ_experts)
    layer.train()

    x = golden_tokens(B, N, D)
    noise = torch.randn(B, N, EC + EU, S)
    grad_output = torch.randn(B, N, D)

    y, dsp, cmb, gx, grads = run_layer(layer, x, grad_output, (noise,))
    tensors = {name: p.detach().clone() for name, p in layer.named_parameters()}
    tensors.update({"input.x": x, "input.noise": noise, "input.grad_output": grad_output,
                    "output.y": y, "debug.dispatch": dsp, "debug.combine": cmb, "grad.x": gx})
    tensors.update({f"grad.{k}": v for k, v in grads.items()})

    support = (cmb > 0).sum(-1).float()
    meta = {
        "layer": "SpheroMoE", "batch": B, "tokens": N, "dim": D, "num_core": EC, "num_univ": EU,
        "core_hidden": HC, "univ_hidden": HU, "slots_per_expert": S,
        "noise_std": f"1/{EC + EU}", "tau_dispatch_init": TAU_D, "tau_combine_init": TAU_C,
        "slot_norm_eps": "1e-5", "l2_eps": "1e-6 added to the norm", "gelu": "erf",
        "phi_init": "orthogonal on the (E*S, D) view",
        "expert_init": "U(+-sqrt(6/in)) per expert, biases 0.02*randn (larger than spec 3.1)",
        "mode": "train; expert_drop=0; drop_path=0; noise given as input.noise",
        "loss": "sum(output.y * input.grad_output)",
        "combine_support_min_mean_max": f"{int(support.min())}/{support.mean():.1f}/{int(support.max())}",
        "seed": SEED, "torch": torch.__version__, "script": SCRIPT,
    }
    meta["f32_vs_f64_max_abs_diff"] = json.dumps(
        float64_discrepancy(layer, tensors, x, grad_output, (noise,)), separators=(",", ":"))
    meta["erf_vs_tanh_gelu_max_abs_diff_y"] = tanh_gelu_shift(layer, x, (noise,))
    check_against_loops(layer, x, y, noise)
    return tensors, meta


def softmoe_case():
    B, N, D, E, S, H = 2, 10, 16, 8, 2, 64
    SCALE = 1.3
    torch.manual_seed(SEED + 1)
    layer = ref.SoftMoE(D, E, slots_per_expert=S, hidden=H, expert_drop=0.0, drop_path_rate=0.0)
    with torch.no_grad():
        layer.scale.fill_(SCALE)
    init_experts_for_golden(layer.experts)
    layer.train()

    x = golden_tokens(B, N, D)
    grad_output = torch.randn(B, N, D)

    y, dsp, cmb, gx, grads = run_layer(layer, x, grad_output)
    tensors = {name: p.detach().clone() for name, p in layer.named_parameters()}
    tensors.update({"input.x": x, "input.grad_output": grad_output, "output.y": y,
                    "debug.dispatch": dsp, "debug.combine": cmb, "grad.x": gx})
    tensors.update({f"grad.{k}": v for k, v in grads.items()})
    meta = {
        "layer": "SoftMoE (Jetpack wrapper, slot_layernorm=False)", "batch": B, "tokens": N,
        "dim": D, "num_experts": E, "slots_per_expert": S, "hidden": H, "scale_init": SCALE,
        "phi_init": "N(0, 1/D)",
        "expert_init": "U(+-sqrt(6/in)) per expert, biases 0.02*randn",
        "l2_eps": "1e-6 added to the norm", "gelu": "erf", "noise": "none",
        "mode": "train; expert_drop=0; drop_path=0", "loss": "sum(output.y * input.grad_output)",
        "seed": SEED + 1, "torch": torch.__version__, "script": SCRIPT,
    }
    meta["f32_vs_f64_max_abs_diff"] = json.dumps(
        float64_discrepancy(layer, tensors, x, grad_output), separators=(",", ":"))
    meta["erf_vs_tanh_gelu_max_abs_diff_y"] = tanh_gelu_shift(layer, x)
    check_against_loops(layer, x, y)
    return tensors, meta


ENTMAX_ROWS = [
    "init-like cosine logits / tau: 0.6*randn",
    "moderate: 1.0*randn",
    "large scale, small support: 8*randn",
    "ties: integers in [-4, 4] times 0.25",
    "all equal (0.7): uniform 1/294",
    "one dominant entry (+6 over 0.05*randn): support of size 1",
]


def entmax_inputs():
    K = 294
    torch.manual_seed(SEED + 2)
    z = torch.stack([
        0.6 * torch.randn(K),
        1.0 * torch.randn(K),
        8.0 * torch.randn(K),
        0.25 * torch.randint(-4, 5, (K,)).float(),
        torch.full((K,), 0.7),
        0.05 * torch.randn(K),
    ])
    z[5, 17] = 6.0
    u = torch.randn(6, K)
    return z, u


def entmax_case():
    z, u = entmax_inputs()
    zz = z.clone().requires_grad_(True)
    p = ref.entmax15(zz, dim=-1)
    (p * u).sum().backward()
    tensors = {"input.z": z, "input.grad_output": u, "output.p": p.detach(), "grad.z": zz.grad}

    z64 = z.double().requires_grad_(True)
    p64 = ref.entmax15(z64, dim=-1)
    (p64 * u.double()).sum().backward()
    diff = {"output.p": float((p.detach().double() - p64.detach()).abs().max()),
            "grad.z": float((zz.grad.double() - z64.grad).abs().max())}
    support = (p > 0).sum(-1).tolist()
    meta = {
        "function": "entmax15 along the last axis (dim=-1)", "rows": json.dumps(ENTMAX_ROWS),
        "support_sizes": json.dumps(support), "loss": "sum(output.p * input.grad_output)",
        "f32_vs_f64_max_abs_diff": json.dumps(diff, separators=(",", ":")),
        "seed": SEED + 2, "torch": torch.__version__, "script": SCRIPT,
    }
    return tensors, meta


# --------------------------------------------------------------------------------------------
# Sanity checks
# --------------------------------------------------------------------------------------------

def entmax_bisection(z, iters=200):
    """Independent solver: tau with sum(max(0, z/2 - tau)^2) = 1, by bisection (float64)."""
    z = z.double() / 2
    hi = z.max(-1, keepdim=True).values
    lo = hi - 1.0                                   # sum >= 1 at tau = max - 1
    for _ in range(iters):
        mid = (lo + hi) / 2
        too_low = (torch.clamp(z - mid, min=0) ** 2).sum(-1, keepdim=True) > 1
        lo = torch.where(too_low, mid, lo)
        hi = torch.where(too_low, hi, mid)
    return torch.clamp(z - (lo + hi) / 2, min=0) ** 2


def check_entmax():
    z, u = entmax_inputs()
    torch.manual_seed(11)
    extra = torch.randn(20, 294) * torch.logspace(-2, 1, 20)[:, None]
    z64 = torch.cat([z.double(), extra.double()]).requires_grad_(True)
    u64 = torch.cat([u.double(), torch.randn(20, 294, dtype=torch.float64)])
    p = ref.entmax15(z64, dim=-1)
    sums = p.sum(-1)
    assert torch.allclose(sums, torch.ones_like(sums), atol=1e-12), sums
    bisect = entmax_bisection(z64.detach())
    err_bis = float((p.detach() - bisect).abs().max())
    assert err_bis < 1e-12, f"closed form vs bisection: {err_bis}"
    (p * u64).sum().backward()
    analytic = ref.entmax15_backward(p.detach(), u64)
    err_bwd = float((z64.grad - analytic).abs().max())
    assert err_bwd < 1e-10, f"autograd vs analytic entmax backward: {err_bwd}"
    # Along a non-last axis: same values as the transposed call.
    p_t = ref.entmax15(z64.detach().t(), dim=0)
    assert torch.equal(p_t.t(), p.detach())
    small = (0.5 * torch.randn(3, 7, dtype=torch.float64)).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: ref.entmax15(t, dim=-1), (small,))
    print(f"  entmax15: rows sum to 1; |closed-form - bisection| = {err_bis:.1e}; "
          f"|autograd - analytic backward| = {err_bwd:.1e}; gradcheck ok")


def naive_moe_forward(layer, x, noise=None):
    """Loop-by-loop numpy float64 restatement of the forward (spec 3.2 steps 1-10 / spec 4),
    to pin down index conventions (softmax axis, j = e*S + s, core before universal) that
    gradcheck cannot see. Dropout and DropPath are 0 here."""
    from math import erf
    P = {k: v.detach().double().numpy() for k, v in layer.named_parameters()}
    x = x.detach().double().numpy()
    B, N, D = x.shape
    sphero = isinstance(layer, ref.SpheroMoE)
    phi = P["phi"]
    E, S = phi.shape[0], phi.shape[1]
    gelu = np.vectorize(lambda v: 0.5 * v * (1 + erf(v / math.sqrt(2))))

    def unit(v):
        return v / (math.sqrt(float(v @ v)) + 1e-6)

    def entmax_1d(z):                           # bisection, independent of ref.entmax15
        z = (z - z.max()) / 2
        lo, hi = -1.0, 0.0
        for _ in range(200):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if (np.clip(z - mid, 0, None) ** 2).sum() > 1 else (lo, mid)
        return np.clip(z - (lo + hi) / 2, 0, None) ** 2

    def softmax_1d(z):
        w = np.exp(z - z.max())
        return w / w.sum()

    q = np.zeros((E * S, D))
    for e in range(E):
        for s in range(S):
            v = phi[e, s]
            if sphero:
                mu, var = v.mean(), ((v - v.mean()) ** 2).mean()
                v = (v - mu) / math.sqrt(var + 1e-5) * P["slot_norm.weight"] + P["slot_norm.bias"]
                q[e * S + s] = unit(v)
            else:
                q[e * S + s] = P["scale"] * unit(v)
    y = np.zeros_like(x)
    for b in range(B):
        logit = np.array([[unit(x[b, n]) @ q[j] for j in range(E * S)] for n in range(N)])
        if sphero:
            xi = noise[b].detach().double().numpy().reshape(N, E * S) / (layer.num_core + layer.num_univ)
            ld, lc = logit / float(P["scales.0"]) + xi, logit / float(P["scales.1"]) + xi
            combine = np.stack([entmax_1d(lc[n]) for n in range(N)])
        else:
            ld = logit
            combine = np.stack([softmax_1d(logit[n]) for n in range(N)])
        dispatch = np.stack([softmax_1d(ld[:, j]) for j in range(E * S)], axis=1)   # [n, j]
        outs = np.zeros((E * S, D))
        for j in range(E * S):
            e = j // S
            slot = sum(dispatch[n, j] * x[b, n] for n in range(N))
            if sphero:
                pre, idx = ("core_experts", e) if e < layer.num_core else ("univ_experts", e - layer.num_core)
            else:
                pre, idx = "experts", e
            h = gelu(P[pre + ".vit_fc1.weight"][idx] @ slot + P[pre + ".vit_fc1.bias"][idx])
            outs[j] = P[pre + ".vit_fc2.weight"][idx] @ h + P[pre + ".vit_fc2.bias"][idx]
        for n in range(N):
            y[b, n] = sum(combine[n, j] * outs[j] for j in range(E * S))
    return torch.from_numpy(y)


def check_against_loops(layer, x, y, noise=None):
    """The stored float32 output.y against the float64 loop restatement of the same case."""
    loops = naive_moe_forward(layer, x, noise) if noise is not None else naive_moe_forward(layer, x)
    err = float((y.double() - loops).abs().max() / loops.abs().max())
    assert err < 1e-5, f"{type(layer).__name__} golden vs loop restatement: {err}"
    print(f"  {type(layer).__name__} golden output.y vs float64 loops: {err:.1e} relative")


def gradcheck_module(module, x, extra_args=()):
    names = [n for n, _ in module.named_parameters()]
    params = [p.detach().clone().requires_grad_(True) for _, p in module.named_parameters()]
    x = x.detach().clone().requires_grad_(True)

    def f(x_, *ps):
        return torch.nn.utils.stateless.functional_call(module, dict(zip(names, ps)),
                                                        (x_,) + tuple(extra_args))

    return torch.autograd.gradcheck(f, (x, *params), eps=1e-6, atol=1e-7, rtol=1e-5)


def check_layers():
    torch.manual_seed(5)
    sph = ref.SpheroMoE(6, num_core=2, num_univ=3, core_hidden=8, univ_hidden=4,
                        slots_per_expert=2).double().train()
    with torch.no_grad():
        sph.slot_norm.weight.add_(0.1 * torch.randn(6, dtype=torch.float64))
        sph.slot_norm.bias.add_(0.1 * torch.randn(6, dtype=torch.float64))
        sph.scales[1].fill_(0.7)
        for experts in (sph.core_experts, sph.univ_experts):
            for lin in (experts.vit_fc1, experts.vit_fc2):
                lin.bias.copy_(0.02 * torch.randn(lin.bias.shape, dtype=torch.float64))
    x = torch.randn(2, 5, 6, dtype=torch.float64)
    noise = torch.randn(2, 5, 5, 2, dtype=torch.float64)
    assert gradcheck_module(sph, x, (noise,))
    err_sph = float((sph(x, noise) - naive_moe_forward(sph, x, noise)).abs().max())
    assert err_sph < 1e-10, f"SpheroMoE vs loop restatement: {err_sph}"

    # 4-D channels-last input is the flattened computation, reshaped back.
    x4 = torch.randn(2, 3, 3, 6, dtype=torch.float64)
    n4 = torch.randn(2, 9, 5, 2, dtype=torch.float64)
    y4 = sph(x4, n4)
    assert y4.shape == x4.shape and torch.equal(y4.reshape(2, 9, 6), sph(x4.reshape(2, 9, 6), n4))

    soft = ref.SoftMoE(6, num_experts=3, slots_per_expert=2, hidden=8).double().train()
    with torch.no_grad():
        soft.scale.fill_(1.3)
    xs = torch.randn(2, 5, 6, dtype=torch.float64)
    assert gradcheck_module(soft, xs)
    err_soft = float((soft(xs) - naive_moe_forward(soft, xs)).abs().max())
    assert err_soft < 1e-10, f"SoftMoE vs loop restatement: {err_soft}"
    print("  SpheroMoE and SoftMoE: float64 gradcheck ok (x and every parameter); forward equals "
          f"a loop restatement ({err_sph:.1e}, {err_soft:.1e}); 4-D input ok")


def check_case(tensors, meta, kind):
    if kind == "entmax":
        sums = tensors["output.p"].double().sum(-1)
        assert (sums - 1).abs().max() < 1e-5, sums
        return
    cmb, dsp = tensors["debug.combine"].double(), tensors["debug.dispatch"].double()
    assert (cmb.sum(-1) - 1).abs().max() < 1e-5, "combine rows must sum to 1 over slots"
    assert (dsp.sum(1) - 1).abs().max() < 1e-5, "dispatch columns must sum to 1 over tokens"
    assert bool(torch.isfinite(torch.stack([t.double().abs().max() for t in tensors.values()])).all())
    worst = json.loads(meta["f32_vs_f64_max_abs_diff"])
    assert max(worst.values()) < 1e-4, worst
    shift = meta["erf_vs_tanh_gelu_max_abs_diff_y"]
    assert shift > 100 * worst["output.y"], f"GELU form barely visible: {shift} vs {worst['output.y']}"


# --------------------------------------------------------------------------------------------

CASES = [
    ("spheromoe_golden.safetensors", spheromoe_case, "moe"),
    ("softmoe_golden.safetensors", softmoe_case, "moe"),
    ("entmax15_golden.safetensors", entmax_case, "entmax"),
]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="run the checks and compare with the existing files; write nothing")
    parser.add_argument("--out", default=HERE, help="output folder (default: next to the script)")
    args = parser.parse_args()
    torch.set_num_threads(2)

    print("sanity checks")
    check_entmax()
    check_layers()

    total = 0
    for filename, build, kind in CASES:
        tensors, meta = build()
        check_case(tensors, meta, kind)
        path = os.path.join(args.out, filename)
        if args.check:
            stored, _ = read_safetensors(path)
            assert list(stored) == list(tensors), f"{filename}: tensor names differ"
            diff = max(float((stored[k] - tensors[k]).abs().max()) for k in tensors)
            print(f"{filename}: matches a fresh run, max |diff| = {diff:.2e}")
            assert diff < 1e-5, diff
            continue
        write_safetensors(path, tensors, meta)
        back, back_meta = read_safetensors(path)
        assert list(back) == list(tensors) and back_meta == {k: str(v) for k, v in meta.items()}
        assert all(torch.equal(back[k], tensors[k]) for k in tensors), "round trip changed bytes"
        size = os.path.getsize(path)
        total += size
        print(f"{filename}: {size:,} bytes, {len(tensors)} tensors")
        print(f"  f32 vs f64 max |diff|: {meta['f32_vs_f64_max_abs_diff']}")
        if kind == "moe":
            print("  max |y|: %.3g; erf-vs-tanh GELU shift of y: %.2g" % (
                float(tensors["output.y"].abs().max()), meta["erf_vs_tanh_gelu_max_abs_diff_y"]))
            if "combine_support_min_mean_max" in meta:
                print("  combine support (min/mean/max):", meta["combine_support_min_mean_max"])
        else:
            print("  support sizes:", meta["support_sizes"])
    if not args.check:
        print(f"total: {total:,} bytes ({total / 2**20:.2f} MiB)")


if __name__ == "__main__":
    main()
