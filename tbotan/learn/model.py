"""The T-BOTAN network (docs/method.md §4): an encode-process-decode interaction network with a global feature.

    h_enc = NodeEncoder(species one-hot)             e_enc = EdgeEncoder(edge features)
    h^0 = h_enc, e^0 = e_enc, g^0 = 0
    for m = 1..n (ONE edge MLP and ONE node MLP, reused at every step):
        e^m = EdgeMLP([h^{m-1}_src, h^{m-1}_dst, e^{m-1}, e_enc])        256 -> 64
        h^m = NodeMLP([h^{m-1}, h_enc, sum_{edges into v} e^m])           192 -> 64
        g^m = GlobalMLP([g^{m-1}, mean_v h^m])                            128 -> 64  (never fed back)
    C_B = Decoder(h^n), E_jk = Decoder(e^n) (shared by default), T = GlobalDecoder(g^n); u = g^n.

Every MLP is Linear-ReLU-Linear-ReLU; decoders add a final Linear to one output. No temperature
anywhere in the input: nodes carry only the species, edges only geometry.

Units of the outputs: each decoder's output y is read as ``shift + scale * y`` with fixed (non-trained)
buffers, one pair each for C_B, E_jk and T. The identity (0, 1) is the paper's network as written;
``set_output_units`` puts the outputs in units of the training set's mean and spread (the training recipe's
``scaling``, docs/training.md). With separate decoders each final Linear absorbs its pair exactly (the function
class is the paper's; what changes is where gradient descent starts and how its steps are scaled); a decoder
shared by nodes and edges gives the two outputs their own fixed affine map: four fixed numbers beyond it.

Units of the edge input: the edge encoder reads (features - shift) / scale with fixed buffers, the identity by
default (the paper's network). ``set_edge_input_units`` sets them (``training.edge_input: standardized``): the
thermal distance (1.58 +- 0.39 on the quickstart's data) enters as its deviation from the training mean in units
of its spread, and the IS vector in units of its root-mean-square component (unshifted and one scale for all three
axes, so the axis permutations and reflections of the augmentation act on it as before). The encoder's first Linear
absorbs the affine map exactly: the function class is the paper's; what changes is where gradient descent starts.

Units of the message sum: NodeMLP reads sum_{edges into v} e^m as (sum - shift) / scale with fixed buffers, one
pair per feature and the same at every step; the identity by default (the paper's network).
``set_message_input_units`` sets them (``training.message_input: standardized``, from the initial network on the
training graphs): a node has ~40 neighbours, so the sum of ReLU outputs has a large common part, and at
initialisation its node-to-node spread is ~5 % of it (docs/training.md); in units of that spread the node MLP sees
the differences between nodes from the first step. NodeMLP's first Linear absorbs the affine map exactly: the
function class is the paper's.

Units of the global chain's input: mean_v h^m enters GlobalMLP as (mean_v h^m - shift_m) / scale_m, with fixed
buffers per step m; the identity (0, 1) is the paper's network. ``set_global_input_units`` sets them
(``training.global_input: standardized`` does it at the switch epoch from the training graphs; measured on the
quickstart, the graph-to-graph spread of mean_v h^m is 0.5 % of its mean in the first epochs and 6-14 % at the
switch, docs/training.md). With one GlobalMLP shared by all steps, per-step
units are a departure from the paper's function class (an option, measured; not the default).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.utils.checkpoint
from torch import nn

EDGE_FEATURES = {"both": 4, "inherent": 3, "thermal": 1}


def mlp(n_in: int, hidden: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(n_in, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU())


def decoder(hidden: int) -> nn.Sequential:
    return nn.Sequential(mlp(hidden, hidden), nn.Linear(hidden, 1))


OUTPUTS = ("node", "edge", "t")
INITS = ("torch", "he")


@dataclass
class Output:
    node: torch.Tensor  # (N,) predicted C_B
    edge: torch.Tensor  # (E,) predicted E_jk
    t: torch.Tensor  # () predicted temperature
    u: torch.Tensor  # (hidden,) global embedding before its decoder
    global_inputs: torch.Tensor  # (steps, hidden) mean_v h^m of every step, before the global input's units


class TBotan(nn.Module):
    def __init__(
        self, variant: str = "both", hidden: int = 64, steps: int = 7, decoder_mode: str = "shared", init: str = "torch"
    ):
        super().__init__()
        if init not in INITS:
            raise ValueError(f"unknown init {init!r} (one of {', '.join(INITS)})")
        if variant not in EDGE_FEATURES:
            raise ValueError(f"unknown variant {variant!r} (one of {', '.join(EDGE_FEATURES)})")
        if decoder_mode not in ("shared", "separate"):
            raise ValueError(f"decoder must be 'shared' or 'separate', not {decoder_mode!r}")
        self.variant, self.hidden, self.steps = variant, hidden, steps
        self.checkpoint_steps = False  # recompute each step's activations in backward (training.checkpoint)
        self.node_encoder = mlp(2, hidden)
        self.edge_encoder = mlp(EDGE_FEATURES[variant], hidden)
        self.edge_mlp = mlp(4 * hidden, hidden)
        self.node_mlp = mlp(3 * hidden, hidden)
        self.global_mlp = mlp(2 * hidden, hidden)
        self.node_decoder = decoder(hidden)
        self.edge_decoder = self.node_decoder if decoder_mode == "shared" else decoder(hidden)
        self.global_decoder = decoder(hidden)
        self.register_buffer("output_shift", torch.zeros(len(OUTPUTS)))
        self.register_buffer("output_scale", torch.ones(len(OUTPUTS)))
        self.register_buffer("global_shift", torch.zeros(steps, hidden))
        self.register_buffer("global_scale", torch.ones(steps, hidden))
        self.register_buffer("edge_shift", torch.zeros(EDGE_FEATURES[variant]))
        self.register_buffer("edge_scale", torch.ones(EDGE_FEATURES[variant]))
        self.register_buffer("message_shift", torch.zeros(hidden))
        self.register_buffer("message_scale", torch.ones(hidden))
        if init == "he":  # He et al. 2015: variance 2 / fan_in keeps a ReLU signal's size through the deep chains
            for m in self.modules():
                if isinstance(m, nn.Linear):
                    nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                    nn.init.zeros_(m.bias)

    def set_output_units(self, shift, scale) -> None:
        """Outputs (node, edge, t) = shift + scale * decoder output; ``shift``, ``scale``: three numbers each."""
        self.output_shift.copy_(torch.as_tensor(shift, dtype=self.output_shift.dtype))
        self.output_scale.copy_(torch.as_tensor(scale, dtype=self.output_scale.dtype))

    def set_global_input_units(self, shift, scale) -> None:
        """GlobalMLP reads (mean_v h^m - shift[m]) / scale[m]; ``shift``, ``scale``: (steps, hidden)."""
        self.global_shift.copy_(torch.as_tensor(shift, dtype=self.global_shift.dtype))
        self.global_scale.copy_(torch.as_tensor(scale, dtype=self.global_scale.dtype))

    def set_edge_input_units(self, shift, scale) -> None:
        """The edge encoder reads (edge features - shift) / scale; ``shift``, ``scale``: one number per feature."""
        self.edge_shift.copy_(torch.as_tensor(shift, dtype=self.edge_shift.dtype))
        self.edge_scale.copy_(torch.as_tensor(scale, dtype=self.edge_scale.dtype))

    def set_message_input_units(self, shift, scale) -> None:
        """NodeMLP reads (sum of incoming messages - shift) / scale; ``shift``, ``scale``: ``hidden`` numbers each."""
        self.message_shift.copy_(torch.as_tensor(shift, dtype=self.message_shift.dtype))
        self.message_scale.copy_(torch.as_tensor(scale, dtype=self.message_scale.dtype))

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """As nn.Module's; a checkpoint made before the output, edge-, message- or global-input units existed reads
        as the identity units."""
        state = dict(state_dict)
        state.setdefault("output_shift", torch.zeros(len(OUTPUTS)))
        state.setdefault("output_scale", torch.ones(len(OUTPUTS)))
        state.setdefault("global_shift", torch.zeros(self.steps, self.hidden))
        state.setdefault("global_scale", torch.ones(self.steps, self.hidden))
        state.setdefault("edge_shift", torch.zeros(EDGE_FEATURES[self.variant]))
        state.setdefault("edge_scale", torch.ones(EDGE_FEATURES[self.variant]))
        state.setdefault("message_shift", torch.zeros(self.hidden))
        state.setdefault("message_scale", torch.ones(self.hidden))
        return super().load_state_dict(state, strict=strict, assign=assign)

    def forward(self, species: torch.Tensor, edges: torch.Tensor, edge_features: torch.Tensor) -> Output:
        """``species`` (N,) 0/1, ``edges`` (E, 2) (src, dst), ``edge_features`` (E, F) for this variant.

        The edge MLP's first layer acts on [h_src, h_dst, e, e_enc]; it is evaluated as the sum of its four
        blocks, W_src h[src] + W_dst h[dst] + W_e e + (W_enc e_enc + b), with the node blocks applied per node
        before the gather and the e_enc block once for all steps: the same function as the concatenation
        (tests/learn/test_model.py), with ~2.5x fewer operations per edge."""
        src, dst = edges[:, 0], edges[:, 1]
        h_enc = self.node_encoder(nn.functional.one_hot(species.long(), 2).to(edge_features.dtype))
        e_enc = self.edge_encoder(
            (edge_features - self.edge_shift.to(edge_features.dtype)) / self.edge_scale.to(edge_features.dtype)
        )
        first, rest = self.edge_mlp[0], self.edge_mlp[1:]
        w_src, w_dst, w_e, w_enc = first.weight.split(self.hidden, dim=1)
        enc_part = nn.functional.linear(e_enc, w_enc, first.bias)
        h, e = h_enc, e_enc
        means = []

        def step(h, e):
            pre = (h @ w_src.T)[src] + (h @ w_dst.T)[dst] + e @ w_e.T + enc_part
            e = rest(pre)
            acc = torch.promote_types(e.dtype, torch.float32)  # the sum of messages stays fp32 under bf16 autocast
            incoming = torch.zeros(h.shape, dtype=acc, device=h.device).index_add_(0, dst, e.to(acc))
            incoming = (incoming - self.message_shift) / self.message_scale
            return self.node_mlp(torch.cat([h, h_enc, incoming], dim=1)), e

        for _ in range(self.steps):
            if self.checkpoint_steps and torch.is_grad_enabled():
                h, e = torch.utils.checkpoint.checkpoint(step, h, e, use_reentrant=False)
            else:
                h, e = step(h, e)
            means.append(h.mean(dim=0))
        means = torch.stack(means)
        return self.decode(h, e, self.global_path(means), means)

    def global_path(self, global_inputs: torch.Tensor) -> torch.Tensor:
        """g^n from the (steps, hidden) mean_v h^m of every step: g^m = GlobalMLP([g^{m-1}, mean_v h^m]), g^0 = 0."""
        g = global_inputs.new_zeros(self.hidden)
        for m in range(self.steps):
            g = self.global_mlp(torch.cat([g, (global_inputs[m] - self.global_shift[m]) / self.global_scale[m]]))
        return g

    def temperature(self, g: torch.Tensor) -> torch.Tensor:
        """The predicted temperature from the global embedding u = g^n."""
        return self.output_shift[2] + self.output_scale[2] * read_out(self.global_decoder, g)

    def decode(self, h: torch.Tensor, e: torch.Tensor, g: torch.Tensor, global_inputs: torch.Tensor) -> Output:
        """The decoders on the last step's node [N, hidden], edge [E, hidden] and global [hidden] features."""
        shift, scale = self.output_shift, self.output_scale
        return Output(
            node=shift[0] + scale[0] * read_out(self.node_decoder, h),
            edge=shift[1] + scale[1] * read_out(self.edge_decoder, e),
            t=self.temperature(g),
            u=g,
            global_inputs=global_inputs,
        )


def read_out(decoder: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """A decoder's output: its MLP, then its last Linear in float32 even under bf16 autocast
    (``training.precision``). What the loss reads are the deviations of a prediction from its mean, small against
    it (C_B = 0.9 +- 0.05; at initialisation 1e-3 of it), which bf16's 8 bits would round away."""
    z = decoder[0](x)
    acc = torch.promote_types(z.dtype, torch.float32)
    with torch.autocast(x.device.type, enabled=False):
        return decoder[1](z.to(acc)).squeeze(-1)


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
