#!/usr/bin/python3
"""Independent PyTorch reference for the Jetpack C# port.

Written from `shared/spec/moe-jetpack.md` (sections 2, 3, 4 and 6.1), not from the MoE-Jetpack
sources. Runs on Debian's torch 1.13 (`/usr/bin/python3`); no timm, einops or entmax needed.

Contents
  entmax15(z, dim)   1.5-entmax, closed form (spec 3.3); plain autograd gives the exact gradient.
  SpheroMoE          the dual-path SpheroMoE layer (spec 3.1, 3.2, 3.5).
  SoftMoE            Jetpack's Soft MoE wrapper with slot_layernorm=False (spec 4).
  VisionTransformer  timm-layout ViT; `vit_tiny()` and `vjetmoe_t()` build the dense ViT-Ti/16
                     and V-JetMoE-T (SpheroMoE in blocks 6..11, spec 2 and 6.1).

Dimension letters used in shape comments:
  b batch, n tokens, d model width, e experts, s slots per expert, j = e*S + s flat slot,
  h expert hidden width, k sorted position along the entmax axis.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

# Both routing norms use this epsilon (spec 3.2 steps 1-2, spec 4).
L2_EPS = 1e-6


# --------------------------------------------------------------------------------------------
# 1.5-entmax (spec 3.3)
# --------------------------------------------------------------------------------------------

def entmax15(z, dim=-1):
    """1.5-entmax of `z` along `dim`: p_i = max(0, z_i/2 - tau)^2 with sum(p) = 1.

    The threshold comes from the sorted closed form. The support size k* is found without
    gradient; tau is then recomputed at k* only, with gradient, so autograd differentiates the
    same closed form the implicit-function gradient describes (g = sqrt(p),
    dz = g*u - (sum(g*u)/sum(g)) * g). Evaluating sqrt only at k* keeps the clamped (zero)
    entries off the graph, where sqrt's backward would produce 0/0.
    """
    z = z.transpose(dim, -1)
    # Shift invariance makes the max a constant for differentiation, so detach it.
    z = (z - z.max(dim=-1, keepdim=True).values.detach()) / 2              # [..., K]
    z_sorted, _ = torch.sort(z, dim=-1, descending=True)                   # [..., K]
    count = z.shape[-1]
    k = torch.arange(1, count + 1, dtype=z.dtype, device=z.device)         # [K]
    mean = z_sorted.cumsum(dim=-1) / k                                     # [..., K]
    mean_sq = (z_sorted * z_sorted).cumsum(dim=-1) / k                     # [..., K]
    spread = k * (mean_sq - mean * mean)                                   # [..., K]  s_k
    slack = (1 - spread) / k                                               # [..., K]
    with torch.no_grad():
        tau_all = mean - torch.sqrt(torch.clamp(slack, min=0))             # [..., K]
        support = (tau_all <= z_sorted).sum(dim=-1, keepdim=True)          # [..., 1]  k*
    last = support - 1                                                     # [..., 1]
    tau = mean.gather(-1, last) - torch.sqrt(torch.clamp(slack.gather(-1, last), min=0))
    p = torch.clamp(z - tau, min=0) ** 2                                   # [..., K]
    return p.transpose(dim, -1)


def entmax15_backward(p, u, dim=-1):
    """Analytic gradient of sum(entmax15(z) * u) w.r.t. z, given p = entmax15(z) (spec 3.3)."""
    g = torch.sqrt(p)
    gu = g * u
    return gu - (gu.sum(dim=dim, keepdim=True) / g.sum(dim=dim, keepdim=True)) * g


# --------------------------------------------------------------------------------------------
# Shared pieces
# --------------------------------------------------------------------------------------------

def drop_path(x, rate, training):
    """Per-sample stochastic depth: one Bernoulli(1-rate) keep per sample, scaled by 1/(1-rate)."""
    if rate == 0.0 or not training:
        return x
    keep = 1.0 - rate
    mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
    return x * mask / keep


def l2_normalise(x):
    """x / (||x||_2 + 1e-6) over the last axis (the epsilon is added to the norm, not squared)."""
    return x / (x.norm(dim=-1, keepdim=True) + L2_EPS)


class StackedLinear(nn.Module):
    """E independent linear maps stored as one 3-D weight [E, out, in] and bias [E, out]."""

    def __init__(self, num_experts, in_features, out_features):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_experts, out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(num_experts, out_features))
        self.reset_parameters()

    def reset_parameters(self):
        # Spec 3.1: kaiming_uniform(a=sqrt 5) on the 3-D tensor, so fan_in = out*in and the bound
        # is 1/sqrt(out*in); bias 0.
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        nn.init.zeros_(self.bias)

    def forward(self, x):                                                  # x [b, e, s, i]
        y = torch.einsum("besi,eoi->beso", x, self.weight)                 # [b, e, s, o]
        return y + self.bias[None, :, None, :]                             # [b, e, s, o]


class MultiExpertMLP(nn.Module):
    """E expert MLPs f(x) = Drop(W2 Drop(GELU(W1 x + b1)) + b2), batched over experts (spec 3.2.8).

    Parameter names follow the reference state dict: `vit_fc1.{weight,bias}`,
    `vit_fc2.{weight,bias}`. GELU is the exact erf form.
    """

    def __init__(self, num_experts, dim, hidden, drop=0.0):
        super().__init__()
        self.vit_fc1 = StackedLinear(num_experts, dim, hidden)
        self.vit_fc2 = StackedLinear(num_experts, hidden, dim)
        self.drop = nn.Dropout(drop)
        self.gelu_approximate = "none"   # exact erf GELU; "tanh" only for sensitivity checks

    def forward(self, x):                                                  # x [b, e, s, d]
        h = F.gelu(self.vit_fc1(x), approximate=self.gelu_approximate)     # [b, e, s, h]
        h = self.drop(h)                                                   # [b, e, s, h]
        return self.drop(self.vit_fc2(h))                                  # [b, e, s, d]


def _flatten_spatial(x):
    """Accept [b, n, d] or channels-last [b, h, w, d]; return [b, n, d] and the original shape."""
    if x.dim() == 4:
        b, hh, ww, d = x.shape
        return x.reshape(b, hh * ww, d), x.shape
    if x.dim() != 3:
        raise ValueError(f"expected [b, n, d] or [b, h, w, d], got {tuple(x.shape)}")
    return x, x.shape


# --------------------------------------------------------------------------------------------
# SpheroMoE (spec 3)
# --------------------------------------------------------------------------------------------

class SpheroMoE(nn.Module):
    """Dual-path SpheroMoE layer: cosine routing, two temperatures, shared noise, softmax
    dispatch over tokens, 1.5-entmax combine over slots, core + universal experts.

    The input is already LN2(h): the block applies its own norm2 first.
    """

    def __init__(self, dim, num_core=98, num_univ=196, core_hidden=None, univ_hidden=None,
                 slots_per_expert=1, expert_drop=0.0, drop_path_rate=0.0, noise_mult=None,
                 use_noise=True):
        super().__init__()
        self.dim = dim
        self.num_core = num_core
        self.num_univ = num_univ
        self.num_experts = num_core + num_univ
        self.slots_per_expert = slots_per_expert
        self.core_hidden = 4 * dim if core_hidden is None else core_hidden
        self.univ_hidden = dim if univ_hidden is None else univ_hidden
        self.drop_path_rate = drop_path_rate
        # sigma = 1/(E_c + E_u), counted in experts, not slots (spec 3.2.4).
        self.noise_mult = 1.0 / self.num_experts if noise_mult is None else noise_mult
        self.use_noise = use_noise

        self.phi = nn.Parameter(torch.empty(self.num_experts, slots_per_expert, dim))
        self.slot_norm = nn.LayerNorm(dim, eps=1e-5)
        self.scales = nn.ParameterList(
            [nn.Parameter(torch.tensor(0.5)), nn.Parameter(torch.tensor(0.5))])  # tau_d, tau_c
        self.core_experts = MultiExpertMLP(num_core, dim, self.core_hidden, expert_drop)
        self.univ_experts = MultiExpertMLP(num_univ, dim, self.univ_hidden, expert_drop)
        self.reset_phi()

    def reset_phi(self):
        # Orthogonal on the (E*S, D) view, so the columns are orthonormal (spec 3.1).
        with torch.no_grad():
            flat = torch.empty(self.num_experts * self.slots_per_expert, self.dim)
            nn.init.orthogonal_(flat)
            self.phi.copy_(flat.view_as(self.phi))

    def forward(self, x, noise=None, return_weights=False):
        """x [b, n, d] or [b, h, w, d]; noise [b, n, e, s] standard normal, or None to draw it
        (when `use_noise`). With return_weights, also returns dispatch and combine [b, n, e*s]."""
        x, in_shape = _flatten_spatial(x)                                  # [b, n, d]
        b, n, d = x.shape
        e, s = self.num_experts, self.slots_per_expert

        keys = l2_normalise(x)                                             # [b, n, d]
        queries = l2_normalise(self.slot_norm(self.phi))                   # [e, s, d]
        logits = torch.einsum("bnd,esd->bnes", keys, queries)              # [b, n, e, s]

        if noise is None and self.use_noise:
            noise = torch.randn_like(logits)
        tau_d, tau_c = self.scales[0], self.scales[1]
        logits_d = logits / tau_d                                          # [b, n, e, s]
        logits_c = logits / tau_c                                          # [b, n, e, s]
        if noise is not None:
            if noise.shape != logits.shape:
                raise ValueError(f"noise {tuple(noise.shape)} != logits {tuple(logits.shape)}")
            xi = noise * self.noise_mult                                   # same xi for both
            logits_d = logits_d + xi
            logits_c = logits_c + xi

        dispatch = torch.softmax(logits_d, dim=1)                          # [b, n, e, s] over n
        combine = entmax15(logits_c.reshape(b, n, e * s), dim=-1)          # [b, n, j]   over j

        slots = torch.einsum("bnd,bnes->besd", x, dispatch)                # [b, e, s, d] raw x
        y_core = self.core_experts(slots[:, :self.num_core])               # [b, ec, s, d]
        y_univ = self.univ_experts(slots[:, self.num_core:])               # [b, eu, s, d]
        y_slots = torch.cat([y_core, y_univ], dim=1).reshape(b, e * s, d)  # [b, j, d]
        y_slots = drop_path(y_slots, self.drop_path_rate, self.training)   # [b, j, d]
        y = torch.einsum("bjd,bnj->bnd", y_slots, combine)                 # [b, n, d]

        y = y.reshape(in_shape)
        if return_weights:
            return y, dispatch.reshape(b, n, e * s), combine
        return y


# --------------------------------------------------------------------------------------------
# Soft MoE, Jetpack wrapper with slot_layernorm=False (spec 4)
# --------------------------------------------------------------------------------------------

class SoftMoE(nn.Module):
    """Soft MoE: K = L2(x), Q = scale * L2(phi), softmax dispatch over tokens and softmax
    combine over all (e, s) slots; no noise; slots from raw x."""

    def __init__(self, dim, num_experts, slots_per_expert=1, hidden=None, expert_drop=0.0,
                 drop_path_rate=0.0):
        super().__init__()
        self.dim = dim
        self.num_experts = num_experts
        self.slots_per_expert = slots_per_expert
        self.hidden = 4 * dim if hidden is None else hidden
        self.drop_path_rate = drop_path_rate
        # phi ~ N(0, 1/D) (spec 4).
        self.phi = nn.Parameter(torch.randn(num_experts, slots_per_expert, dim) / math.sqrt(dim))
        self.scale = nn.Parameter(torch.tensor(1.0))
        self.experts = MultiExpertMLP(num_experts, dim, self.hidden, expert_drop)

    def forward(self, x, return_weights=False):
        x, in_shape = _flatten_spatial(x)                                  # [b, n, d]
        b, n, d = x.shape
        e, s = self.num_experts, self.slots_per_expert

        keys = l2_normalise(x)                                             # [b, n, d]
        queries = self.scale * l2_normalise(self.phi)                      # [e, s, d]
        logits = torch.einsum("bnd,esd->bnes", keys, queries)              # [b, n, e, s]

        dispatch = torch.softmax(logits, dim=1)                            # [b, n, e, s] over n
        combine = torch.softmax(logits.reshape(b, n, e * s), dim=-1)       # [b, n, j]   over j

        slots = torch.einsum("bnd,bnes->besd", x, dispatch)                # [b, e, s, d]
        y_slots = self.experts(slots).reshape(b, e * s, d)                 # [b, j, d]
        y_slots = drop_path(y_slots, self.drop_path_rate, self.training)   # [b, j, d]
        y = torch.einsum("bjd,bnj->bnd", y_slots, combine)                 # [b, n, d]

        y = y.reshape(in_shape)
        if return_weights:
            return y, dispatch.reshape(b, n, e * s), combine
        return y


# --------------------------------------------------------------------------------------------
# ViT-Ti/16 and V-JetMoE-T (spec 2, 6.1), timm key layout
# --------------------------------------------------------------------------------------------

class PatchEmbed(nn.Module):
    def __init__(self, patch=16, in_chans=3, dim=192):
        super().__init__()
        self.proj = nn.Conv2d(in_chans, dim, kernel_size=patch, stride=patch)

    def forward(self, x):                                                  # x [b, 3, H, W]
        return self.proj(x).flatten(2).transpose(1, 2)                     # [b, n_patch, d]


class Attention(nn.Module):
    """Multi-head self-attention with qkv bias; explicit softmax(QK^T/sqrt(dh)) V, because
    torch 1.13 has no scaled_dot_product_attention."""

    def __init__(self, dim, num_heads):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=True)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):                                                  # x [b, n, d]
        b, n, d = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)                     # each [b, nh, n, dh]
        attn = (q @ k.transpose(-2, -1)) / math.sqrt(self.head_dim)        # [b, nh, n, n]
        out = attn.softmax(dim=-1) @ v                                     # [b, nh, n, dh]
        return self.proj(out.transpose(1, 2).reshape(b, n, d))             # [b, n, d]


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm block; `mlp` is the dense Mlp or a SpheroMoE (which receives norm2's output)."""

    def __init__(self, dim, num_heads, mlp, drop_path_rate=0.0):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = mlp
        self.drop_path_rate = drop_path_rate

    def forward(self, x):                                                  # x [b, n, d]
        x = x + drop_path(self.attn(self.norm1(x)), self.drop_path_rate, self.training)
        x = x + drop_path(self.mlp(self.norm2(x)), self.drop_path_rate, self.training)
        return x


class VisionTransformer(nn.Module):
    """ViT with avg pooling over patch tokens -> fc_norm -> head (the final `norm` is Identity)."""

    def __init__(self, img_size=224, patch=16, dim=192, depth=12, num_heads=3, mlp_hidden=768,
                 num_classes=1000, drop_path_rate=0.0, moe_layers=(), moe_factory=None):
        super().__init__()
        num_patches = (img_size // patch) ** 2
        self.patch_embed = PatchEmbed(patch, 3, dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches + 1, dim))
        rates = torch.linspace(0, drop_path_rate, depth).tolist()
        blocks = []
        for i in range(depth):
            mlp = moe_factory(i) if i in moe_layers else Mlp(dim, mlp_hidden)
            blocks.append(Block(dim, num_heads, mlp, rates[i]))
        self.blocks = nn.ModuleList(blocks)
        self.norm = nn.Identity()
        self.fc_norm = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, num_classes)
        self._init_dense()

    def _init_dense(self):
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.normal_(self.cls_token, std=1e-6)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def forward(self, images):                                             # [b, 3, H, W]
        x = self.patch_embed(images)                                       # [b, 196, d]
        cls = self.cls_token.expand(x.shape[0], -1, -1)                    # [b, 1, d]
        x = torch.cat([cls, x], dim=1) + self.pos_embed                    # [b, 197, d]
        for blk in self.blocks:
            x = blk(x)                                                     # [b, 197, d]
        x = self.norm(x)
        pooled = x[:, 1:].mean(dim=1)                                      # [b, d] no cls
        return self.head(self.fc_norm(pooled))                             # [b, classes]


VIT_TINY_PARAMS = 5_717_416
VJETMOE_T_PARAMS = 265_411_636          # 265.4 M (spec 6.1, paper Table 4)
SPHEROMOE_T_LAYER_PARAMS = 43_578_242   # one SpheroMoE layer at D=192, 98/196 (spec 3.1)


def vit_tiny(num_classes=1000, drop_path_rate=0.1, img_size=224):
    model = VisionTransformer(img_size=img_size, num_classes=num_classes,
                              drop_path_rate=drop_path_rate)
    if (num_classes, img_size) == (1000, 224):
        count = count_params(model)
        assert count == VIT_TINY_PARAMS, f"ViT-Ti has {count} parameters, expected {VIT_TINY_PARAMS}"
    return model


def vjetmoe_t(num_classes=1000, drop_path_rate=0.1, moe_layers=(6, 7, 8, 9, 10, 11),
              num_core=98, num_univ=196, expert_drop=0.4, moe_drop_path_rate=0.1,
              use_noise=True, img_size=224):
    """V-JetMoE-T: ViT-Ti/16 with SpheroMoE (98 core x 768, 196 universal x 192, one slot each)
    in blocks 6..11; MoE DropPath rate linspace(0, 0.1, 12)[layer] (spec 3.2.9)."""
    moe_rates = torch.linspace(0, moe_drop_path_rate, 12).tolist()

    def make_moe(layer):
        return SpheroMoE(192, num_core, num_univ, core_hidden=768, univ_hidden=192,
                         slots_per_expert=1, expert_drop=expert_drop,
                         drop_path_rate=moe_rates[layer], use_noise=use_noise)

    model = VisionTransformer(img_size=img_size, num_classes=num_classes,
                              drop_path_rate=drop_path_rate, moe_layers=tuple(moe_layers),
                              moe_factory=make_moe)
    standard = (num_classes, tuple(moe_layers), num_core, num_univ, img_size)
    if standard == (1000, (6, 7, 8, 9, 10, 11), 98, 196, 224):
        count = count_params(model)
        assert count == VJETMOE_T_PARAMS, f"V-JetMoE-T has {count} parameters, expected {VJETMOE_T_PARAMS}"
    return model


def count_params(module):
    return sum(p.numel() for p in module.parameters())
